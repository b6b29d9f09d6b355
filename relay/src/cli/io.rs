//! Reading inputs and writing outputs for the subcommands: `-` means stdin or
//! stdout, and every failure names the file.

use std::io::{Read, Write};
use std::path::Path;

use super::CliError;

/// Reads a whole file, or stdin for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Writes bytes to a file (atomically: temp file then rename), or stdout for `-` / none.
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<(), CliError> {
    match path {
        None => write_stdout(bytes),
        Some(p) if p == Path::new("-") => write_stdout(bytes),
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = p
                .file_name()
                .ok_or_else(|| format!("{}: not a file name", p.display()))?;
            let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
            std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(())
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing stdout: {e}").into())
}

/// Reads a message spec from JSON (file or stdin), errors naming file, field path and line.
pub fn read_spec(path: &Path) -> Result<postwire_core::MessageSpec, CliError> {
    let bytes = read_input(path)?;
    let text =
        String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 JSON: {e}", path.display()))?;
    postwire_core::spec::from_json(&text).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Clock and entropy for building natively: now, and a seed from the OS
/// (std's randomly keyed hasher), unless fixed on the command line.
pub fn build_options(now: Option<i64>, seed: Option<u64>) -> postwire_core::BuildOptions {
    use std::hash::{BuildHasher, Hasher};
    let now = now.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    });
    let seed = seed.unwrap_or_else(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(now);
        h.write_u32(std::process::id());
        h.finish()
    });
    postwire_core::BuildOptions { now, seed }
}
