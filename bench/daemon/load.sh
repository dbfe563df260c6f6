#!/usr/bin/env bash
# Daemon load benchmark: the real `hybrid-runner daemon` against the fake Gitea,
# 100 tasks with capacity 20, each a host step printing 1,000 lines stamped with
# $EPOCHREALTIME. Fails if any task does not succeed or any row is lost or duplicated;
# prints the daemon's peak RSS (VmHWM), CPU time (own and steps'), and the log latency
# p50/p95/max from a line's printing to its storage on the fake (then acknowledged).
# Runs `gitea_daemon_load` (a module of the tests crate's `gitea` test binary) in an
# optimized build of the tests crate (the suite runs it in debug): the `profiling` profile,
# the release settings without fat LTO, which would take long for a test binary.
# TASKS/LINES cannot be changed here: they are fixed in the test.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
cargo test --profile profiling -p hybrid-runner-tests --test gitea -- \
  --exact gitea_daemon_load::load_100_tasks_of_1000_lines_at_capacity_20_lose_no_row --nocapture
