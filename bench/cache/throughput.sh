#!/usr/bin/env bash
# Cache save and restore through the real client (@actions/cache from npm, as .ci/test
# installs it) against exec's cache server, next to a plain `tar | zstd` of the same files
# measured in the same run, and the runner's peak RSS (the server runs in the exec process)
# for a small and a large entry.
#
# The data: DATA_MB MB (default 200), half one incompressible file, half many small files
# copied from /usr/lib and /usr/share (real mixed files). Per size and protocol (v2, the
# default, and v1), one exec run saves in one job and restores in a `needs` job; each step
# prints how long saveCache / restoreCache took. The peer: the toolkit's own tar command
# (`tar --posix -cf … --use-compress-program zstdmt`) and its extract, timed alone. Rounds
# (ROUNDS, default 3) interleave peer, v2 and v1; medians are printed.
# BIN=path/to/hybrid-runner skips the build (default: the `profiling` profile of this tree,
# release code without LTO, copied aside). NPM=path/to/node_modules (default: .ci/test's).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# In memory by default (tmpfs), with the runner's temp folder there too: extracting
# thousands of small files to disk varies 5x from run to run with writeback, which would
# swamp both figures.
if [ -z "${BENCH_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  work=/dev/shm/hybrid-runner-bench-cache
else
  work="${BENCH_DIR:-/tmp/hybrid-runner-bench-cache}"
fi
data_mb="${DATA_MB:-200}"
npm="${NPM:-$HOME/.cache/hybrid-runner/npm/node_modules}"
[ -f "$npm/@actions/cache/package.json" ] || { echo "no @actions/cache in $npm (run .ci/test once)" >&2; exit 1; }
for tool in node tar zstd zstdmt python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

rm -rf "$work"; mkdir -p "$work"
if [ -z "${BIN:-}" ]; then
  (cd "$repo" && cargo build -q --profile profiling -p hybrid-runner)
  target="${CARGO_TARGET_DIR:-$repo/target}"
  cp "$target/profiling/hybrid-runner" "$work/hybrid-runner"
  BIN="$work/hybrid-runner"
fi

# A data set of $1 MB in $2/data: half random, half small real files.
make_data() {
  local mb=$1 dir=$2/data half=$(( $1 * 1024 * 1024 / 2 ))
  mkdir -p "$dir/small"
  head -c "$half" /dev/urandom > "$dir/big.bin"
  python3 - "$dir/small" "$half" <<'EOF'
import os, sys, shutil
out, budget = sys.argv[1], int(sys.argv[2])
n = 0
for root in ("/usr/lib", "/usr/share"):
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            size = os.path.getsize(p)
            if size == 0 or size > 256 * 1024 or size > budget:
                continue
            shutil.copyfile(p, os.path.join(out, f"{n:06d}-{f}"))
            budget -= size; n += 1
            if budget < 1024:
                sys.exit(0)
EOF
}

# The workflow: save in one job, restore in a `needs` job, each step timing its call.
write_repo() {
  local dir=$1
  mkdir -p "$dir/.github/workflows"
  cat > "$dir/c.mjs" <<'EOF'
import fs from 'node:fs';
const cache = await import(process.env.CACHE_LIB);
const [cmd, key] = process.argv.slice(2);
if (cmd === 'save') {
  const t = process.hrtime.bigint();
  const id = await cache.saveCache(['data'], key);
  console.log(`BENCH save ms=${Number(process.hrtime.bigint() - t) / 1e6} id=${id}`);
} else {
  // Not timed: the peer extracts into an empty folder too.
  fs.rmSync('data', { recursive: true, force: true });
  const t = process.hrtime.bigint();
  const hit = await cache.restoreCache(['data'], key);
  console.log(`BENCH restore ms=${Number(process.hrtime.bigint() - t) / 1e6} hit=${hit}`);
}
EOF
  cat > "$dir/.github/workflows/c.yml" <<'EOF'
on: push
jobs:
  save:
    runs-on: ubuntu-latest
    steps:
      - run: node c.mjs save bench-key
  restore:
    needs: save
    runs-on: ubuntu-latest
    steps:
      - run: node c.mjs restore bench-key
EOF
  (cd "$dir" && git init -q && git add c.mjs .github && git -c user.email=b@b -c user.name=b commit -qm bench)
}

# Runs exec in $1 with ACTIONS_CACHE_SERVICE_V2=$2 (empty: v1); prints "save_ms restore_ms
# peak_kib".
run_exec() {
  local dir=$1 v2=$2 cache=$1/../cache-$RANDOM
  mkdir -p "$work/tmp"
  ( cd "$dir" && TMPDIR="$work/tmp" exec "$BIN" exec --cache-server-path "$cache" \
      --env "CACHE_LIB=file://$npm/@actions/cache/lib/cache.js" \
      --env "ACTIONS_CACHE_SERVICE_V2=$v2" > "$dir/../exec-$v2.log" 2>&1 ) &
  local pid=$! peak=0 hwm
  while kill -0 "$pid" 2>/dev/null; do
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.05
  done
  wait "$pid" || { cat "$dir/../exec-$v2.log" >&2; exit 1; }
  local save restore
  save=$(grep -o 'BENCH save ms=[0-9.]*' "$dir/../exec-$v2.log" | cut -d= -f2)
  restore=$(grep -o 'BENCH restore ms=[0-9.]*' "$dir/../exec-$v2.log" | cut -d= -f2)
  grep -q 'hit=bench-key' "$dir/../exec-$v2.log" || { echo "restore missed" >&2; cat "$dir/../exec-$v2.log" >&2; exit 1; }
  echo "$save $restore $peak"
}

mbps() { python3 -c "print(f'{$1 / ($2 / 1000):.0f}')"; }

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
rounds="${ROUNDS:-3}"

printf '%-8s %-4s %14s %14s %14s %14s %14s\n' size proto "save MB/s" "peer save" "restore MB/s" "peer restore" "peak RSS MiB"
for mb in 20 "$data_mb"; do
  dir="$work/$mb/repo"
  mkdir -p "$dir"
  make_data "$mb" "$dir"
  write_repo "$dir"
  actual_mb=$(du -sm --apparent-size "$dir/data" | cut -f1)
  declare -A save=() restore=() peak=()
  peer_saves=() peer_restores=()
  # Interleaved rounds (peer, v2, v1), each after a sync, so writeback and the page cache
  # fall on all alike; medians are printed.
  for _ in $(seq "$rounds"); do
    sync
    peer_saves+=( "$( { /usr/bin/time -f '%e' tar --posix -cf "$work/$mb/peer.tzst" -P -C "$dir" data --use-compress-program zstdmt; } 2>&1 | tail -1)" )
    rm -rf "$work/$mb/extract"; mkdir -p "$work/$mb/extract"; sync
    peer_restores+=( "$( { /usr/bin/time -f '%e' tar -xf "$work/$mb/peer.tzst" -P -C "$work/$mb/extract" --use-compress-program unzstd; } 2>&1 | tail -1)" )
    for proto in v2 v1; do
      sync
      read -r s r p < <(run_exec "$dir" "$([ "$proto" = v2 ] && echo true)")
      save[$proto]+="$s "; restore[$proto]+="$r "; peak[$proto]+="$p "
    done
  done
  ps=$(median "${peer_saves[@]}"); pr=$(median "${peer_restores[@]}")
  for proto in v2 v1; do
    # shellcheck disable=SC2086
    printf '%-8s %-4s %14s %14s %14s %14s %14s\n' "${actual_mb}MB" "$proto" \
      "$(mbps "$actual_mb" "$(median ${save[$proto]})")" "$(mbps "$actual_mb" "$(python3 -c "print($ps*1000)")")" \
      "$(mbps "$actual_mb" "$(median ${restore[$proto]})")" "$(mbps "$actual_mb" "$(python3 -c "print($pr*1000)")")" \
      "$(( $(median ${peak[$proto]} | cut -d. -f1) / 1024 ))"
  done
  unset save restore peak
done
