//! The `postwire` command: build, parse and send email; run the relay.

fn main() -> std::process::ExitCode {
    postwire_relay::cli::main()
}
