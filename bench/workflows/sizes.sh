#!/usr/bin/env bash
# Input-size benchmark: how `validate`, `exec -n`, `list` and `expr` scale with the size of
# what they read. Each row generates one workflow folder and times one command on it (wall
# time and peak RSS from /usr/bin/time), at two sizes, so a quadratic path shows as a
# 25-fold step instead of a 5-fold one:
#   steps     one job of N unnamed `run:` steps (generated ids `__run`, `__run_2`, ...)
#   comments  N lines `K<i>: "x"#c` under `env:` (a `#` right after a quote is a comment)
#   jobs      N one-step jobs, `exec -n` (the scheduler starts each once its needs finish)
#   fan-out   ten files, each calling the next from four jobs (`list`, `exec -n`: refused)
#   memory    `expr` of `format('{0}{0}{0}{0}', …)` nested 40 deep (refused at 1 MiB)
# Prints the figures; it never fails on a timing. A command still running after
# TIMEOUT seconds (default 60) is stopped and shown as `>TIMEOUT s`; each runs with at most
# MEM_LIMIT_MB of address space (default 4096, `ulimit -v`), and one that ends by a signal
# or an abort shows its exit status (`rc 134`).
#
# BIN=path/to/hybrid-runner times that binary (default: `cargo build --profile profiling`
# of this tree). BASE_BIN=path/to/another adds its column, e.g. a build of an older commit:
#   git worktree add /tmp/hr-base <commit> && (cd /tmp/hr-base && cargo build --profile profiling -p hybrid-runner)
#   BASE_BIN=/tmp/hr-base/target/profiling/hybrid-runner bash bench/workflows/sizes.sh
# SIZES="2000 10000" sets the two sizes.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
timeout_s="${TIMEOUT:-60}"
mem_limit_kb=$(( ${MEM_LIMIT_MB:-4096} * 1024 ))
read -r -a sizes <<< "${SIZES:-2000 10000}"

if [ -z "${BIN:-}" ]; then
  (cd "$repo" && cargo build --profile profiling -q -p hybrid-runner)
  BIN="$target/profiling/hybrid-runner"
fi
bins=("$BIN")
names=("now")
if [ -n "${BASE_BIN:-}" ]; then
  bins=("$BASE_BIN" "$BIN")
  names=("base" "now")
fi

work="$(mktemp -d /tmp/hybrid-runner-bench-sizes.XXXXXX)"
trap 'rm -rf "$work"' EXIT

steps() {
  printf 'on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n'
  for ((i = 0; i < $1; i++)); do printf '      - run: echo\n'; done
}
comments() {
  printf 'on: push\nenv:\n'
  for ((i = 0; i < $1; i++)); do printf '  K%d: "x"#c\n' "$i"; done
  printf 'jobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n'
}
jobs() {
  printf 'on: push\njobs:\n'
  for ((i = 0; i < $1; i++)); do
    printf '  j%d:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n' "$i"
  done
}
fan_out() {
  for i in $(seq 0 9); do
    {
      printf 'on:\n  push:\n  workflow_call:\njobs:\n'
      if [ "$i" = 9 ]; then
        printf '  leaf:\n    runs-on: ubuntu-latest\n    steps:\n      - run: "true"\n'
      else
        for j in 0 1 2 3; do printf '  c%d:\n    uses: ./.github/workflows/w%d.yml\n' "$j" $((i + 1)); done
      fi
    } > "$1/.github/workflows/w$i.yml"
  done
}

# One figure: wall seconds and peak RSS of `$@` run in folder $1, or >TIMEOUT, and the
# exit status when it ended by a signal or an abort.
measure() {
  local dir="$1"; shift
  local out
  out="$(cd "$dir" && ulimit -v "$mem_limit_kb" &&
    /usr/bin/time -f '%e %M %x' timeout "$timeout_s" "$@" 2>&1 >/dev/null | tail -n 2)" || true
  local wall rss status signal
  read -r wall rss status <<< "$(tail -n 1 <<< "$out")"
  signal="$(sed -n 's/.*terminated by signal \([0-9]*\).*/\1/p' <<< "$out")"
  if [ -n "$signal" ]; then status=$((128 + signal)); fi
  if [ -n "$wall" ] && awk -v w="$wall" -v t="$timeout_s" 'BEGIN { exit !(w >= t) }'; then
    printf '>%s s' "$timeout_s"
  elif [ -z "$status" ]; then
    printf '%s' "$out"
  else
    printf '%s s, %s MB' "$wall" "$((rss / 1024))"
    if [ "$status" -ge 128 ] 2>/dev/null; then printf ', rc %s' "$status"; fi
  fi
}

row() {
  local label="$1" dir="$2"; shift 2
  printf '%-28s' "$label"
  for bin in "${bins[@]}"; do
    printf ' | %-22s' "$(measure "$dir" "$bin" "$@")"
  done
  printf '\n'
}

printf '%-28s' "case"
for name in "${names[@]}"; do printf ' | %-22s' "$name"; done
printf '\n'
for n in "${sizes[@]}"; do
  for kind in steps comments jobs; do
    dir="$work/$kind-$n"
    mkdir -p "$dir/.github/workflows"
    "$kind" "$n" > "$dir/.github/workflows/w.yml"
  done
  row "validate, $n steps" "$work/steps-$n" validate
  row "validate, $n comments" "$work/comments-$n" validate
  row "exec -n, $n jobs" "$work/jobs-$n" exec -n
done
dir="$work/fan-out"
mkdir -p "$dir/.github/workflows"
fan_out "$dir"
row "list, 10-file fan-out" "$dir" list -W .github/workflows/w0.yml
row "exec -n, 10-file fan-out" "$dir" exec -n -W .github/workflows/w0.yml
e="'x'"
for _ in $(seq 40); do e="format('{0}{0}{0}{0}', $e)"; done
row "expr, format nested 40" "$work" expr "$e"
