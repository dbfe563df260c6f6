#!/usr/bin/env bash
# Build avoidance benchmark: `hybrid-runner build` of an unchanged context, with and without
# `--skip-unchanged`, both variants (docker + k8s), buildah (vfs storage, chroot isolation)
# pushing to a real docker-registry on loopback.
#
# The context: ~CONTEXT_MB MB (default 20) of regular files copied from /usr/lib (real mixed
# files), `COPY . /app/` in both Dockerfiles. A first build with --skip-unchanged records the
# build keys; then hyperfine times, with the same inputs every run:
#   rebuild          hybrid-runner build ...                   (buildah builds and pushes)
#   skip-unchanged   hybrid-runner build ... --skip-unchanged  (key lookup + retag only)
# Needs hyperfine, buildah, docker-registry. BIN=path/to/hybrid-runner to skip the cargo
# build (default: a debug build of this tree, copied aside so a shared target dir cannot swap it).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${BENCH_DIR:-/tmp/hybrid-runner-bench-avoidance}"
context_mb="${CONTEXT_MB:-20}"
runs="${RUNS:-5}"

for tool in hyperfine buildah docker-registry; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

rm -rf "$work"; mkdir -p "$work"
if [ -z "${BIN:-}" ]; then
  (cd "$repo" && cargo build -q -p hybrid-runner)
  target="${CARGO_TARGET_DIR:-$repo/target}"
  cp "$target/debug/hybrid-runner" "$work/hybrid-runner"
  BIN="$work/hybrid-runner"
fi
"$BIN" build --help | grep -q -- --skip-unchanged || { echo "$BIN has no --skip-unchanged" >&2; exit 1; }

# A registry on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
host="127.0.0.1:$port"

# Private buildah storage and an empty Docker config.
mkdir -p "$work/storage" "$work/docker"
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/storage/root"\nrunroot = "%s/storage/run"\n' \
  "$work" "$work" > "$work/storage.conf"
echo '{"auths":{}}' > "$work/docker/config.json"
export CONTAINERS_STORAGE_CONF="$work/storage.conf" STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
export DOCKER_CONFIG="$work/docker"
unset KUBECONFIG KUBERNETES_SERVICE_HOST GITHUB_SHA

# The context.
ctx="$work/ctx"; mkdir -p "$ctx/files"
(cd /usr/lib && find . -type f -size -5M -print0 | sort -z) | python3 -c '
import os, shutil, sys
src, dst, limit = "/usr/lib", sys.argv[1], int(sys.argv[2]) * 1000 * 1000
total = 0
for rel in sys.stdin.buffer.read().split(b"\0"):
    if not rel: continue
    s = os.path.join(src.encode(), rel); d = os.path.join(dst.encode(), rel)
    try:
        size = os.path.getsize(s)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copyfile(s, d)
    except OSError:
        continue
    total += size
    if total >= limit: break
' "$ctx/files" "$context_mb"
printf 'FROM scratch\nCOPY . /app/\n' > "$ctx/Dockerfile"
printf 'FROM scratch\nCOPY files /k8s/\n' > "$ctx/Dockerfile.k8s"
echo "context: $(find "$ctx" -type f | wc -l) files, $(du -sb "$ctx" | cut -f1) bytes"

build="$BIN build $ctx --image $host/bench/app --sha bench --builder buildah --insecure-registry $host"
# Seed: build once with the flag so the build keys are recorded.
$build --skip-unchanged >"$work/seed.log" 2>&1
# Check: the flagged build reuses both variants.
$build --skip-unchanged --json 2>/dev/null | python3 -c '
import json, sys
report = json.load(sys.stdin)
reused = [v["reused"] for v in report["services"][0]["variants"]]
assert reused == [True, True], reused
print("check: --skip-unchanged reuses both variants")'

hyperfine --warmup 1 --runs "$runs" --export-markdown "$work/results.md" \
  -n "rebuild" "$build" \
  -n "skip-unchanged" "$build --skip-unchanged"
cat "$work/results.md"
