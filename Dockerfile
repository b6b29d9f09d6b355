# The postwire relay as a container: multi-stage build, non-root user, data volume.
#
#   docker build -t postwire-relay .
#   docker run --rm -v pw-data:/data postwire-relay token add app --allow-from @example.com
#   docker run -d -p 8025:8025 -v pw-data:/data postwire-relay            # delivers into /data/pickup
#   docker run -d -p 8025:8025 -v pw-data:/data -e POSTWIRE_SMTP_URL='smtp://user@smtp.example.com:587?security=starttls&connections=8' \
#       -e POSTWIRE_SMTP_PASSWORD=... postwire-relay
#
# Settings: POSTWIRE_* variables (see docs/relay.md), or a TOML file passed with --config.

# Node.js 20 for the composer page's build (Debian bookworm's own is 18).
FROM node:20-bookworm-slim AS node

# 1. The npm package (wasm32, wasm-bindgen, wasm-opt) and the composer page
#    (web/dist), then the relay binary, which embeds the page.
FROM rust:1.95-bookworm AS build
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
WORKDIR /src
COPY . .
# scripts/build-release.sh builds the package and the page first
# (scripts/build-wasm.sh adds the wasm32 target with rustup and installs
# wasm-bindgen-cli and binaryen), then the binary that embeds the page.
RUN bash scripts/build-release.sh --locked \
 && install -D target/release/postwire /out/postwire

# 2. The runtime: the binary alone, as a non-root user, data on a volume.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 postwire \
 && useradd --system --uid 10001 --gid postwire --home-dir /data --shell /usr/sbin/nologin postwire \
 && mkdir -p /data && chown postwire:postwire /data
COPY --from=build /out/postwire /usr/local/bin/postwire
USER postwire:postwire
ENV POSTWIRE_LISTEN=0.0.0.0:8025 \
    POSTWIRE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8025
# bash, not sh: /dev/tcp is a bash feature (Debian's sh is dash).
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8025 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '\"status\":\"ok\"' <&3"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["postwire"]
CMD ["serve"]
