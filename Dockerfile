# The hybrid-runner daemon image: the image `hybrid-runner generate-manifests --image` wants.
#
#   hybrid-runner build . --image registry.example.com/hybrid-runner --tag 0.1.0
#   (or: docker build -t registry.example.com/hybrid-runner:0.1.0 .), then
#   hybrid-runner generate-manifests --image registry.example.com/hybrid-runner:0.1.0 ...
#
# Build args (all optional):
#   RUST_IMAGE     base of the `build` stage, which compiles the runner with cargo
#                  (default docker.io/library/rust:1.89-bookworm: the workspace's
#                  rust-version, edition 2024, the same Debian release as the runtime).
#   RUNTIME_IMAGE  base of the final image (default docker.io/library/debian:bookworm-slim).
#                  Point both at a mirror when Docker Hub is out of reach.
#   BINARY_FROM    where /usr/local/bin/hybrid-runner comes from:
#                  `build` (default) compiles it in the build stage: `cargo build --release
#                  --locked -p hybrid-runner --bin hybrid-runner` over the whole workspace,
#                  then strips it;
#                  `prebuilt` copies instead a Linux hybrid-runner binary that you put at the
#                  root of the build context (next to this file), a Linux build for the
#                  image's architecture against glibc 2.36 (bookworm's) or older. The build
#                  stage then only copies, so any image with a POSIX shell serves as
#                  RUST_IMAGE: pass the RUNTIME_IMAGE to pull nothing more.
#                  (One stage that branches, not `FROM ${BINARY_FROM}`: buildah before 1.29,
#                  Debian bookworm's 1.28 among them, ignores an ARG's default when it decides
#                  which stages to skip, and Kaniko builds every stage.)
#   RUNNER_UID     uid and gid of the `runner` user (default 10001, the uid pod.yaml runs as).
#
# What the image holds: the runner at /usr/local/bin/hybrid-runner, tini as PID 1 (it reaps
# the processes host steps leave and forwards SIGTERM), git, bash, ca-certificates and
# nodejs (Debian's, for JavaScript actions), the user `runner` (home /work) owning /work and
# /data, the folders templates/deploy/pod.yaml mounts (/data for `.runner` and the log
# spool, /work for task folders and $HOME, /tmp). The manifests set only `args`, so the
# entrypoint is the runner itself: `register ...` in the init container, `daemon --config
# /etc/hybrid-runner/config/config.yaml` in the daemon container (also the default CMD).
# Bake further tools your host steps need into an image FROM this one.

ARG RUST_IMAGE=docker.io/library/rust:1.89-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
ARG BINARY_FROM=build
WORKDIR /src
COPY . .
# The build removes target/ and cargo's downloads when done: Kaniko snapshots and buildah
# commits this stage, and nothing after it needs them.
RUN set -eu; \
    mkdir -p /out; \
    case "${BINARY_FROM}" in \
    build) \
        cargo build --release --locked -p hybrid-runner --bin hybrid-runner; \
        cp target/release/hybrid-runner /out/hybrid-runner; \
        strip /out/hybrid-runner; \
        rm -rf target "${CARGO_HOME:-$HOME/.cargo}/registry" "${CARGO_HOME:-$HOME/.cargo}/git" ;; \
    prebuilt) \
        if [ ! -x hybrid-runner ]; then \
            echo "BINARY_FROM=prebuilt: no executable hybrid-runner at the context root" >&2; \
            exit 1; \
        fi; \
        cp hybrid-runner /out/hybrid-runner ;; \
    *) \
        echo "BINARY_FROM must be build or prebuilt, not ${BINARY_FROM}" >&2; \
        exit 1 ;; \
    esac

FROM ${RUNTIME_IMAGE}
ARG RUNNER_UID=10001
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bash ca-certificates git nodejs tini; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --gid "${RUNNER_UID}" runner; \
    useradd --uid "${RUNNER_UID}" --gid "${RUNNER_UID}" --home-dir /work --shell /bin/bash \
        --no-create-home runner; \
    mkdir -p /work /data; \
    chown "${RUNNER_UID}:${RUNNER_UID}" /work /data; \
    chmod 0750 /work /data
COPY --from=build /out/hybrid-runner /usr/local/bin/hybrid-runner
USER ${RUNNER_UID}:${RUNNER_UID}
ENV HOME=/work
WORKDIR /work
EXPOSE 9101
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/hybrid-runner"]
CMD ["daemon", "--config", "/etc/hybrid-runner/config/config.yaml"]
