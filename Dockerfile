# syntax=docker/dockerfile:1.7.1
#
# backup-fleet: one image with the three binaries in /usr/local/bin:
#   backup-producer (service: `backup-producer serve`), backup-worker (service), backupctl (CLI).
#
#   docker buildx build --platform linux/arm64 -t backup-fleet:<version> .            # all three, worker entry point
#   docker buildx build --platform linux/arm64 --target producer -t backup-fleet-producer:<version> .
#
# The ECS task definitions (terraform/modules/fleet) set the entry point of each service
# explicitly, so one image (the default target) serves both services. The `producer`, `worker`
# and `ctl` targets only differ in their default ENTRYPOINT/CMD, for `docker run`.
#
# The builder runs on the build machine's architecture and cross-compiles when the target
# platform differs (an amd64 CI runner builds the arm64 image without QEMU emulation).
#
# Base images are pinned; no `latest`, no floating major tag:
#   - the BuildKit frontend (the `syntax` line) to docker/dockerfile:1.7.1;
#   - the builder to rust:1.95.0-bookworm, an exact Rust release (the lockfile needs >= 1.94.1,
#     aws-sdk-* and aws-smithy-*). It must stay a bookworm (Debian 12) image: the binaries link
#     against its glibc and run on the Debian 12 runtime below. The tag is pinned, not its digest:
#     the digest was not resolvable where this was written (no registry access); add
#     `@sha256:...` from `docker buildx imagetools inspect rust:1.95.0-bookworm` to pin the bytes;
#   - the runtime by digest: distroless publishes no version tags (only moving ones such as
#     `nonroot`), so a digest is the only exact pin. The tag in front of it is informational (the
#     digest wins). This digest was taken from public projects that pin cc-debian12:nonroot (one
#     of them builds linux/arm64 from it, so it is the multi-platform index); it could not be
#     verified where this was written (no registry access): check it, and refresh it when taking
#     in Debian security updates, with `docker buildx imagetools inspect
#     gcr.io/distroless/cc-debian12:nonroot` (use the index digest, which covers linux/arm64).

#checkov:skip=CKV_DOCKER_2:No HEALTHCHECK: the services expose no port or probe, the distroless image has no shell, and ECS (which ignores image HEALTHCHECKs unless the task definition sets one) replaces failed tasks through the circuit breaker and queue metrics.

###############################################################################################
FROM --platform=$BUILDPLATFORM rust:1.95.0-bookworm AS builder

ARG TARGETARCH
ARG BUILDARCH

# Rust target triple for the image's platform; a cross linker when it is not the builder's own.
RUN set -eux; \
    case "${TARGETARCH}" in \
        arm64) triple=aarch64-unknown-linux-gnu; cross="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
        amd64) triple=x86_64-unknown-linux-gnu;  cross="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
        *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    if [ "${TARGETARCH}" != "${BUILDARCH}" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends ${cross}; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "${triple}"; \
    echo "${triple}" > /rust-target

# Linkers and C compilers (aws-lc-sys builds C) for both triples; Debian's gcc also installs the
# triple-prefixed names for its native architecture, so these work for native builds too.
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    AR_x86_64_unknown_linux_gnu=x86_64-linux-gnu-ar \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

WORKDIR /src
COPY . .

# The registry and target directories are BuildKit cache mounts: rebuilds after a code change
# recompile only the workspace crates, not the AWS SDKs. Only the three shipped packages are
# built: the `tests` crate's tools (backup-bench, fault-proxy) never enter the image build.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eux; \
    triple="$(cat /rust-target)"; \
    cargo build --release --locked -p backup-worker -p backup-producer -p backupctl --bins \
        --target "${triple}"; \
    mkdir -p /out; \
    for bin in backup-producer backup-worker backupctl; do \
        cp "target/${triple}/release/${bin}" /out/; \
    done

###############################################################################################
# Runtime: distroless (glibc, CA certificates, no shell, no package manager), non-root.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime

LABEL org.opencontainers.image.title="backup-fleet" \
      org.opencontainers.image.description="Event-driven AWS backup pipeline: producer, worker and backupctl" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder --chown=0:0 --chmod=0755 /out/ /usr/local/bin/

# distroless "nonroot" (65532); the ECS task definitions pin the same user.
USER 65532:65532
ENV BACKUP_LOG_FORMAT=json
# ECS sends SIGTERM, then SIGKILL after stopTimeout; the worker drains on SIGTERM.
STOPSIGNAL SIGTERM

###############################################################################################
FROM runtime AS ctl
ENTRYPOINT ["/usr/local/bin/backupctl"]
CMD ["--help"]

FROM runtime AS producer
ENTRYPOINT ["/usr/local/bin/backup-producer"]
CMD ["serve"]

# Last stage = the default target.
FROM runtime AS worker
ENTRYPOINT ["/usr/local/bin/backup-worker"]
