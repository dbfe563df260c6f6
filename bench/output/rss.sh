#!/usr/bin/env bash
# Peak RSS of `exec` while a step prints a lot: one step printing SIZE (default 1G) of
# short lines (`yes | head -c SIZE`, two bytes a line), with human output and with
# `--json`, written to /dev/null. Prints the runner's maximum resident set (`/usr/bin/time
# -v`, which counts the step's `yes` and `head` too: each stays under 2 MB), the wall
# time and the lines printed. Never fails on the figures; it fails only when a run fails
# or loses lines.
#
# BIN=path/to/hybrid-runner to measure another build (e.g. an older commit built with
# `cargo build --profile profiling`); default: the `profiling` build of this checkout.
# Before back-pressure a step's output piled up in memory: do not run an old build with
# SIZE=1G on a machine with less than 24 GiB.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
size="${SIZE:-1G}"
if [[ -z "${BIN:-}" ]]; then
  (cd "$repo" && cargo build --profile profiling -p hybrid-runner --locked)
  BIN="${CARGO_TARGET_DIR:-$repo/target}/profiling/hybrid-runner"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/.github/workflows"
cat > "$work/.github/workflows/loud.yml" <<YAML
on: push
jobs:
  loud:
    runs-on: ubuntu-latest
    steps:
      - run: yes | head -c $size
YAML
git -C "$work" init -q

bytes=$(numfmt --from=iec "$size")
expected=$((bytes / 2))
for mode in human json; do
  flag=()
  [[ $mode == json ]] && flag=(--json)
  out="$work/out.txt"
  (cd "$work" && /usr/bin/time -v "$BIN" exec "${flag[@]}" 2> "$work/time.txt" \
    | grep -c '\by"\?}\?$' > "$out") || true
  lines=$(cat "$out")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  wall=$(awk -F'): ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  status=$(awk -F': ' '/Exit status/ {print $2}' "$work/time.txt")
  printf '%-5s %s printed: peak RSS %6.1f MiB, wall %s, %d lines (of %d), exit %s\n' \
    "$mode" "$size" "$(echo "$rss / 1024" | bc -l)" "$wall" "$lines" "$expected" "$status"
  if [[ "$status" != 0 || "$lines" != "$expected" ]]; then
    echo "the run failed or lost lines" >&2
    exit 1
  fi
done
