#!/usr/bin/env bash
# Context packing benchmark: `hybrid-runner context DIR` (walk + .dockerignore + tar + gzip -1
# on all cores + sha256) against `tar -czf - . | sha256sum` and
# `tar -cf - . | pigz -1 -p 2 | sha256sum` on the same folder, in the same run.
#
# The folder: a copy of /usr/lib (real mixed files: shared objects, Python, Perl, data),
# the first ~200 MB of regular files under 20 MB in sorted order, plus a .dockerignore
# whose patterns match nothing (so every command packs the same bytes). Override with CONTEXT_SRC=/some/dir.
# Needs hyperfine and pigz (apt-get install -y hyperfine pigz).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
work="${BENCH_DIR:-/tmp/hybrid-runner-bench-context}"
src="${CONTEXT_SRC:-/usr/lib}"
limit_mb="${LIMIT_MB:-200}"

for tool in hyperfine pigz; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y $tool" >&2; exit 1; }
done

(cd "$repo" && cargo build --release -q -p hybrid-runner)
bin="$target/release/hybrid-runner"

dir="$work/ctx"
if [ ! -f "$work/.ready-$limit_mb" ]; then
  rm -rf "$work"; mkdir -p "$dir"
  # Copy regular files (no symlinks, no special files) until ~limit_mb MB, in a fixed order.
  (cd "$src" && find . -type f -size -20M -print0 | sort -z) |
    python3 -c '
import os, shutil, sys
src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]) * 1000 * 1000
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
' "$src" "$dir" "$limit_mb"
  touch "$work/.ready-$limit_mb"
fi
# Patterns every path is checked against but that match nothing here, so all three commands
# pack the same bytes.
printf '# benchmark ignore file\n.git\n**/*.tmp\n**/node_modules\n*.log\n' > "$dir/.dockerignore"

files=$(find "$dir" -type f | wc -l)
size=$(du -sb "$dir" | cut -f1)
echo "folder: $dir ($files files, $size bytes, from $src)"
echo "cores: $(nproc)"

# Determinism: three runs, one sha.
shas=$(for _ in 1 2 3; do "$bin" context "$dir" | tail -1; done | sort -u)
echo "our sha over 3 runs: $shas"
[ "$(echo "$shas" | wc -l)" -eq 1 ] || { echo "NOT DETERMINISTIC" >&2; exit 1; }
one=$("$bin" context --threads 1 "$dir" | tail -1)
[ "$one" = "$shas" ] || { echo "threads=1 gives $one" >&2; exit 1; }
"$bin" context "$dir" -o "$work/ctx.tar.gz" >/dev/null
echo "archive: $(stat -c %s "$work/ctx.tar.gz") bytes; gzip -t: $(gzip -t "$work/ctx.tar.gz" && echo ok)"

cd "$dir"
hyperfine --warmup 1 --runs "${RUNS:-5}" --export-markdown "$work/results.md" \
  -n "hybrid-runner context" "$bin context $dir" \
  -n "tar -czf | sha256sum" "tar -czf - . | sha256sum" \
  -n "tar | pigz -1 -p 2 | sha256sum" "tar -cf - . | pigz -1 -p 2 | sha256sum"
cat "$work/results.md"
