# syntax=docker/dockerfile:1
#
# sio-relay container image: built from source, runs as a non-root user with no shell.
#
#   docker build --build-arg GIT_REVISION="$(git rev-parse --short HEAD)" -t sio-relay .
#   docker run --rm -p 3000:3000 sio-relay
#
# Settings: mount a file over /etc/sio-relay/sio-relay.toml, or set SIO_RELAY_<SECTION>_<KEY>
# variables (docker run -e SIO_RELAY_LOG_LEVEL=debug ...). See docs/deploy.md.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# The build context has no .git; the revision shown by `sio-relay --version` comes from here.
ARG GIT_REVISION=unknown
WORKDIR /src
COPY . .
# The same command tests/deploy.rs runs. Cache mounts keep the crate registry and compiled
# dependencies between builds; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sio-relay \
    && install -D -m 0755 target/release/sio-relay /out/sio-relay

# Debian 12 with glibc and libgcc (what the binary links to), CA certificates, no shell and
# no package manager; its `nonroot` user is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="sio-relay" \
      org.opencontainers.image.description="Socket.IO relay: backends push to clients over HTTP" \
      org.opencontainers.image.revision="${GIT_REVISION}"
COPY --from=build /out/sio-relay /usr/local/bin/sio-relay
COPY config/sio-relay.toml /etc/sio-relay/sio-relay.toml
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# 3000: Socket.IO. 3001: admin API, on 127.0.0.1 unless SIO_RELAY_ADMIN_LISTEN and
# SIO_RELAY_ADMIN_TOKENS are set (the relay refuses a non-loopback admin listener without
# tokens).
EXPOSE 3000 3001
# Runs inside the container, so the loopback admin listener is reachable; exit 0 when
# /healthz answers 200 within 2 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/sio-relay", "healthcheck", "--config", "/etc/sio-relay/sio-relay.toml"]
# Arguments of `docker run IMAGE ...` are appended: daemon flags such as --log-level debug,
# or --check-config.
ENTRYPOINT ["/usr/local/bin/sio-relay", "--config", "/etc/sio-relay/sio-relay.toml"]
