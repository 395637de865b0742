#
# sio-relay container image: built from source, runs as a non-root user with no shell.
#
#   docker build --build-arg GIT_REVISION="$(git rev-parse --short HEAD)" -t sio-relay .
#   docker run --rm -p 3000:3000 sio-relay
#
# Settings: mount a file over /etc/sio-relay/sio-relay.toml, or set SIO_RELAY_<SECTION>_<KEY>
# variables (docker run -e SIO_RELAY_LOG_LEVEL=debug ...). See docs/deploy.md.
#
# Needs BuildKit (the default builder since Docker 23; `DOCKER_BUILDKIT=1` on Docker 20.10)
# for the cache mounts, and nothing else: no `# syntax=` line, so the builder's own
# Dockerfile frontend is used and no frontend image is pulled.

# The base images, as build arguments so that a mirror or a locally made image can stand in
# (tests/docker.rs builds on images made from Debian's packages).
ARG RUST_VERSION=1.95
ARG RUST_IMAGE=rust:${RUST_VERSION}-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# Where the binary comes from: `build` compiles it here; `prebuilt` takes dist/sio-relay
# from the build context, built beforehand with the same cargo command from the same
# sources (see docs/deploy.md). The stage not named is skipped.
ARG BINARY=build

FROM ${RUST_IMAGE} AS build
# jemalloc, the relay's allocator, is compiled from source with make, which the slim Rust
# image lacks. The version is the base image's Debian release's.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
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

FROM scratch AS prebuilt
COPY dist/sio-relay /out/sio-relay

# The stage named by BINARY.
# hadolint ignore=DL3006
FROM ${BINARY} AS binary

# Debian 12 with glibc and libgcc (what the binary links to), CA certificates, no shell and
# no package manager; its `nonroot` user is 65532.
# hadolint ignore=DL3006
FROM ${RUNTIME_IMAGE}
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="sio-relay" \
      org.opencontainers.image.description="Socket.IO relay: backends push to clients over HTTP" \
      org.opencontainers.image.revision="${GIT_REVISION}"
COPY --from=binary /out/sio-relay /usr/local/bin/sio-relay
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
