#!/usr/bin/env bash
# The stop-signal tests under CPU load: ROUNDS rounds (default 10) of the engine test binary
# (host backend stop sequence, Gitea task cancels, ...) and the `exec` signal tests
# (exec_cli::ctrl_c), while one busy loop per core (HOGS, default: the core count) keeps
# every core at 100 %. Prints one line per round and a summary; a failed round's output is
# kept under $work. The build happens first, without load; it is not part of the rounds.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${BENCH_DIR:-/tmp/hybrid-runner-bench-signals}"
rounds="${ROUNDS:-10}"
hogs="${HOGS:-$(nproc)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hybrid-runner/target}"

rm -rf "$work"; mkdir -p "$work"
cd "$repo"
cargo test -q -p hybrid-runner-tests --test engine --test cli --no-run 2>/dev/null || {
  echo "the test binaries do not build" >&2; exit 1; }

pids=()
stop_hogs() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop_hogs EXIT
for _ in $(seq "$hogs"); do
  ( while :; do :; done ) &
  pids+=($!)
done
echo "$hogs busy loops on $(nproc) cores; $rounds rounds"

failed=0
for round in $(seq "$rounds"); do
  start=$(date +%s)
  ok=1
  cargo test -q -p hybrid-runner-tests --test engine >"$work/round-$round-engine.log" 2>&1 || ok=0
  cargo test -q -p hybrid-runner-tests --test cli -- exec_cli::ctrl_c >"$work/round-$round-cli.log" 2>&1 || ok=0
  took=$(( $(date +%s) - start ))
  if ((ok)); then
    echo "round $round: passed (${took} s)"
    rm -f "$work/round-$round-"*.log
  else
    failed=$((failed + 1))
    names=$(grep -h -E '^    [a-z_:]+$' "$work/round-$round-"*.log | sort -u | tr -d ' ' | tr '\n' ' ')
    echo "round $round: FAILED (${took} s): $names"
  fi
done
echo "under load: $((rounds - failed)) of $rounds rounds passed"
