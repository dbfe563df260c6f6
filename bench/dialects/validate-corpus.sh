#!/usr/bin/env bash
# Real workflow files of Gitea, Forgejo and GitHub repositories through `validate`, each
# read by the dialect of its folder: how many each dialect accepts. SOURCES.tsv names every
# file (dialect, repository, path, commit, first 16 hex digits of its sha256); the files
# themselves are downloaded at those commits into a temporary folder, not kept here.
#
#   BIN=target/debug/hybrid-runner bash bench/dialects/validate-corpus.sh
#
# Needs network access to raw.githubusercontent.com. Prints one line per rejected file
# (its first problem) and a count per dialect.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${BIN:-hybrid-runner}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
declare -A total rejected
while IFS=$'\t' read -r dialect repo path commit sha; do
  [[ "$dialect" == dialect ]] && continue
  dest="$work/${repo/\//__}/$path"
  mkdir -p "$(dirname "$dest")"
  if ! curl -fsSL "https://raw.githubusercontent.com/$repo/$commit/$path" -o "$dest"; then
    echo "skip $repo/$path: cannot download it" >&2
    continue
  fi
  if [[ "$(sha256sum "$dest" | cut -c1-16)" != "$sha" ]]; then
    echo "skip $repo/$path: not the file recorded" >&2
    continue
  fi
  total[$dialect]=$(( ${total[$dialect]:-0} + 1 ))
  if ! first="$("$bin" validate "$dest" 2>/dev/null | head -1)" || [[ -n "$first" ]]; then
    rejected[$dialect]=$(( ${rejected[$dialect]:-0} + 1 ))
    echo "rejected ${first#"$work/"}"
  fi
done <"$here/SOURCES.tsv"
for d in gitea forgejo github; do
  echo "$d: ${total[$d]:-0} files, $(( ${total[$d]:-0} - ${rejected[$d]:-0} )) accepted"
done
