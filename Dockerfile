# The hybrid-runner daemon image: the image `hybrid-runner generate-manifests --image` wants.
#
#   hybrid-runner build . --image registry.example.com/hybrid-runner
#   (or: docker build -t registry.example.com/hybrid-runner:0.1.0 .)
#
# Build args (all optional):
#   RUST_IMAGE     base of the `build` stage, which compiles the runner with cargo
#                  (default docker.io/library/rust:1.89-bookworm: the workspace's
#                  rust-version, edition 2024, the same Debian release as the runtime).
#   RUNTIME_IMAGE  base of the final image (default docker.io/library/debian:bookworm-slim).
#                  Point both at a mirror when Docker Hub is out of reach.
#   BINARY_FROM    where /usr/local/bin/hybrid-runner comes from:
#                  `build` (default) compiles it here: `cargo build --release --locked
#                  -p hybrid-runner --bin hybrid-runner` over the whole workspace, stripped;
#                  `prebuilt` copies a Linux hybrid-runner binary that you put at the root of
#                  the build context (next to this file) instead, e.g. one built on a
#                  glibc >= 2.36 host. Only builders that skip unused stages (buildah, podman,
#                  BuildKit) then leave out the build stage; Kaniko builds every stage.
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
ARG BINARY_FROM=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hybrid-runner --bin hybrid-runner \
 && mkdir -p /out \
 && cp target/release/hybrid-runner /out/hybrid-runner \
 && strip /out/hybrid-runner

# The context as is: its root-level `hybrid-runner` becomes /out/hybrid-runner. It copies the
# whole (small, .dockerignore'd) context rather than that one file so that a builder that
# runs every stage (Kaniko) does not fail here when no prebuilt binary is present.
FROM scratch AS prebuilt
COPY . /out/

FROM ${BINARY_FROM} AS binary

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
COPY --from=binary /out/hybrid-runner /usr/local/bin/hybrid-runner
USER ${RUNNER_UID}:${RUNNER_UID}
ENV HOME=/work
WORKDIR /work
EXPOSE 9101
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/hybrid-runner"]
CMD ["daemon", "--config", "/etc/hybrid-runner/config/config.yaml"]
