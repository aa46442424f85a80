# syntax=docker/dockerfile:1.7.1
#
# backup-fleet: one image with the three binaries in /usr/local/bin:
#   backup-producer (service: `backup-producer serve`), backup-worker (service), backupctl (CLI).
#
#   docker buildx build --platform linux/arm64 -t backup-fleet:<version> .            # all three, worker entry point
#   docker buildx build --platform linux/arm64 --target producer -t backup-fleet-producer:<version> .
#
# The ECS task definitions (terraform/modules/fleet) set the entry point of each service
# explicitly, so one image (the default target) serves both services. The `producer` and `ctl`
# targets only differ in their default ENTRYPOINT/CMD, for `docker run`, and are distroless. The
# `worker` target (the default, so the image ECS runs for both services unless `producer_image`
# points at a `--target producer` build) is Debian 12 slim with PostgreSQL's client tools: the
# worker runs pg_dump and pg_restore for the logical PostgreSQL backups (see its stage below).
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
#     gcr.io/distroless/cc-debian12:nonroot` (use the index digest, which covers linux/arm64);
#   - the worker's runtime by digest too, debian:12-slim (tag informational, the digest wins). This
#     digest was also taken from public projects that pin debian:12-slim / debian:bookworm-slim
#     (several describe it as the multi-platform index); it could not be verified where this was
#     written (no registry access): check it, and refresh it with the Debian point releases, with
#     `docker buildx imagetools inspect debian:12-slim` (the index digest, covering linux/arm64).

#checkov:skip=CKV_DOCKER_2:No HEALTHCHECK: the services expose no port or probe, the distroless images have no shell, and ECS (which ignores image HEALTHCHECKs unless the task definition sets one) replaces failed tasks through the circuit breaker and queue metrics.

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
# Runtime of the producer and backupctl: distroless (glibc, CA certificates, no shell, no package
# manager), non-root.
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

###############################################################################################
# Worker runtime: Debian 12 slim (glibc, as the builder) with PostgreSQL's client tools, non-root.
# Last stage = the default target.
#
# The worker streams `pg_dump --format=custom` to S3 for the logical PostgreSQL backups and runs
# pg_restore in restore drills, so it cannot run from the distroless image: pg_dump and
# pg_restore come from Debian 12's postgresql-client, i.e. PostgreSQL 15 (postgresql-client-15,
# kept on the latest 15.x by Debian's security archive; not version-pinned, because superseded
# versions leave the archive). /usr/bin/pg_dump and /usr/bin/pg_restore are Debian's wrapper (a Perl
# script) around /usr/lib/postgresql/15/bin/, which holds the binaries themselves.
#
# Which servers these client tools support:
#   - pg_dump 15 dumps servers from PostgreSQL 9.2 up to 15, its own major version. It refuses a
#     newer server ("aborting because of server version mismatch"): backing up PostgreSQL 16 or 17
#     (e.g. RDS for PostgreSQL 16/17) needs a newer client, postgresql-client-17 from the PGDG apt
#     repository (apt.postgresql.org), which dumps 9.2 through 17;
#   - pg_restore 15 reads archives written by pg_dump 15 or older, and restores into a server of the
#     dumped server's major version or newer.
# The build fails if the installed pg_dump/pg_restore are older than 15.
#
# The same binaries as the distroless runtime, plus: ca-certificates (rustls loads the system
# roots), and the user `nonroot` with the distroless uid/gid 65532 that the ECS task definitions pin
# (libpq looks the current user up in /etc/passwd). The ECS root filesystem is read-only, /tmp is
# writable: pg_dump writing an archive to stdout and pg_restore reading one from stdin write no
# files (a custom-format archive read from a pipe restores sequentially: no `pg_restore -j`).
FROM debian:12-slim@sha256:60eac759739651111db372c07be67863818726f754804b8707c90979bda511df AS worker

LABEL org.opencontainers.image.title="backup-fleet" \
      org.opencontainers.image.description="Event-driven AWS backup pipeline: producer, worker and backupctl" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates postgresql-client; \
    rm -rf /var/lib/apt/lists/*; \
    for tool in pg_dump pg_restore; do \
        version="$("${tool}" --version | awk '{ print $3 }')"; \
        [ "${version%%.*}" -ge 15 ] || { echo "${tool} ${version} is older than 15" >&2; exit 1; }; \
    done; \
    groupadd --system --gid 65532 nonroot; \
    useradd --system --no-log-init --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home \
        --shell /usr/sbin/nologin nonroot

COPY --from=builder --chown=0:0 --chmod=0755 /out/ /usr/local/bin/

# Same uid as distroless "nonroot" (65532); the ECS task definitions pin the same user.
USER 65532:65532
# glibc keeps freed multi-MiB dump parts in its heap, so with 16 MiB parts a worker's memory climbs
# to about four parts above its start during a logical backup; with allocations of 1 MiB and more
# served by mmap (returned on free) it stays one part above it (docs/BENCHMARKS.md, "Logical backup
# memory": peak 111.8 -> 63.5 MiB for a 1 GB dump).
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576
ENV BACKUP_LOG_FORMAT=json
# ECS sends SIGTERM, then SIGKILL after stopTimeout; the worker drains on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/backup-worker"]
