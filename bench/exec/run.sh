#!/usr/bin/env bash
# Benchmark `hybrid-runner exec` against wrkflw 0.8.0 (host/emulation runtime) on the same
# workflows: a 16-leg x 3-step matrix, one job of 50 trivial steps, and the act host corpus
# rows both tools run successfully. Prints wall time (hyperfine), peak RSS (GNU time) and the
# per-step overhead over a bare `bash -c true` spawn. Timing never fails the script.
#
# Usage: bash bench/exec/run.sh
# Environment:
#   HYBRID_RUNNER_CONFORMANCE  conformance data folder [default: <repo>/../shared/conformance]
#   CARGO_TARGET_DIR           where our release binary is built [default: <repo>/target]
#   BENCH_RUNS, BENCH_WARMUP   hyperfine runs and warmups per command [default: 10, 2]
#   BENCH_BASELINE_RUNS        interleaved rounds of the per-step overhead section [default: 40]
#   BENCH_OUT                  where hyperfine JSON and logs go [default: $CARGO_TARGET_DIR/bench-exec]
#   BENCH_ROWS                 space-separated act row dirs to consider [default: all host rows]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
conformance=${HYBRID_RUNNER_CONFORMANCE:-$root/../shared/conformance}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
runs=${BENCH_RUNS:-10}
warmup=${BENCH_WARMUP:-2}
baseline_runs=${BENCH_BASELINE_RUNS:-40}
out=${BENCH_OUT:-$CARGO_TARGET_DIR/bench-exec}
export PATH="$HOME/.cargo/bin:$PATH"

# ---- tools ---------------------------------------------------------------------------------
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    echo "installing ${missing[*]} (apt)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v wrkflw >/dev/null; then
    echo "installing wrkflw 0.8.0 (cargo install; several minutes)" >&2
    cargo install wrkflw --version 0.8.0 --locked
fi
command -v python3 >/dev/null || { echo "python3 is needed to read JSON" >&2; exit 2; }

echo "building hybrid-runner (release)" >&2
cargo build --release -q -p hybrid-runner --manifest-path "$root/Cargo.toml"
hr=$CARGO_TARGET_DIR/release/hybrid-runner
wrk=$(command -v wrkflw)

work=$(mktemp -d -t bench-exec.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"
: >"$out/records.tsv"

# act's environment (ACT=true and act's default actor); harmless for the synthetic workflows.
export ACT=true GITHUB_ACTOR=nektos/act

# Make $1 a git repository with one commit, a github.com/nektos/act origin (act's
# github.repository_owner) and user nektos/act (act's GITHUB_ACTOR; our engine reads the actor
# from git's user.name, wrkflw from the environment).
git_repo() {
    git -C "$1" init -q
    git -C "$1" config user.name nektos/act
    git -C "$1" config user.email act@localhost
    git -C "$1" remote add origin https://github.com/nektos/act.git
    git -C "$1" add -A
    git -C "$1" commit -q -m bench --allow-empty
}

# wrkflw 0.8.0 rejects a workflow without a top-level `name:` (GitHub does not), so give the
# workflow $1 one (named $2) when it has none; both tools run the same edited file.
ensure_name() {
    python3 - "$1" "$2" <<'PY'
import json, re, sys
path, name = sys.argv[1], sys.argv[2]
text = open(path).read()
if not re.search(r"^name\s*:", text, re.M):
    m = re.match(r"(?:\s*#[^\n]*\n|\s*\n)*(---[^\n]*\n)?", text)
    cut = m.end() if m else 0
    text = text[:cut] + f"name: {json.dumps(name)}\n" + text[cut:]
    open(path, "w").write(text)
    print("named")
PY
}

# peak_rss DIR CMD: peak resident set (KiB) of one run of CMD (a shell-quoted string) in DIR.
peak_rss() {
    local file=$work/rss.$$
    (cd "$1" && eval "/usr/bin/time -f %M -o $file $2" >/dev/null 2>&1) || true
    tail -n 1 "$file"
}

# bench NAME OURS_DIR OURS_CMD WRK_DIR WRK_CMD: hyperfine both (each in its own folder, so a
# workflow that writes into its workspace cannot disturb the other tool), then one RSS run each.
bench() {
    local name=$1 safe=${1//\//_} status=ok
    echo "benchmarking $name" >&2
    (cd "$2" && hyperfine -N --warmup "$warmup" --runs "$runs" --style none \
        --export-json "$out/$safe.ours.json" -n ours "$3" >"$out/$safe.ours.log" 2>&1) || status=ours-failed
    (cd "$4" && hyperfine -N --warmup "$warmup" --runs "$runs" --style none \
        --export-json "$out/$safe.wrkflw.json" -n wrkflw "$5" >"$out/$safe.wrkflw.log" 2>&1) || status=wrkflw-failed
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$out/$safe.ours.json" "$out/$safe.wrkflw.json" \
        "$(peak_rss "$2" "$3")" "$(peak_rss "$4" "$5")" "$status" >>"$out/records.tsv"
}

q() { printf '%q' "$1"; }

# The last non-blank line of a log, cut to 160 characters (why a probe run failed).
last_line() { { grep -v '^[[:space:]]*$' "$1" || true; } | tail -n 1 | cut -c1-160; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- synthetic workflows -------------------------------------------------------------------
synth=$work/synth
mkdir -p "$synth/.github/workflows"
cp "$here"/workflows/*.yml "$synth/.github/workflows/"
git_repo "$synth"
for wf in matrix16x3 steps50; do
    file=.github/workflows/$wf.yml
    bench "$wf" "$synth" "$(q "$hr") exec -W $file" "$synth" "$(q "$wrk") run --runtime emulation $file"
done

# ---- act host corpus rows ------------------------------------------------------------------
# One line per host-runnable row: dir, base, expected, workflow (relative to the copy),
# and our extra flags (shell-quoted). wrkflw has no flags for events, payloads, secrets,
# inputs or matrix filters, so it gets the workflow path alone.
plan=$(python3 - "$conformance/act/runner_cases.json" "${BENCH_ROWS:-}" <<'PY'
import json, shlex, sys
rows = json.load(open(sys.argv[1]))
only = set(sys.argv[2].split())
for r in rows:
    if not r.get("host_runnable_offline") or (only and r["dir"] not in only):
        continue
    base = r["base"] + "/"
    rel = lambda p: p[len(base):] if p.startswith(base) else p
    cfg = r.get("config", {})
    flags = ["-E", r["event"], "--env", "ACT=true"]
    if "event_path" in cfg:
        flags += ["-e", rel(cfg["event_path"])]
    if "secrets_file" in cfg:
        flags += ["--secret-file", rel(cfg["secrets_file"])]
    if "env_file" in cfg:
        flags += ["--env-file", rel(cfg["env_file"])]
    for k, v in cfg.get("inputs", {}).items():
        flags += ["--input", f"{k}={v}"]
    for k, vs in cfg.get("matrix_filter", {}).items():
        for v in vs:
            flags += ["--matrix", f"{k}:{v}"]
    for t in r.get("act_tests", []):
        for k, v in (t.get("secrets") or {}).items():
            flags += ["-s", f"{k}={v}"]
    wfs = r["workflow_files"]
    wf = rel(wfs[0]) if len(wfs) == 1 else ""
    print("\t".join([r["dir"], r["base"], r["expected"], wf, shlex.join(flags)]))
PY
)

dropped=()
named=()
kept=0
while IFS=$'\t' read -r dir base expected wf flags; do
    [[ -n $dir ]] || continue
    if [[ $expected != success ]]; then
        dropped+=("$dir: the row expects the run to fail ($expected)")
        continue
    fi
    if [[ -z $wf ]]; then
        dropped+=("$dir: several workflow files; wrkflw runs one file per call")
        continue
    fi
    safe=${dir//\//_}
    ours_dir=$work/act/$safe/ours
    wrk_dir=$work/act/$safe/wrkflw
    mkdir -p "$ours_dir" "$wrk_dir"
    cp -a "$conformance/act/testdata/$base/." "$ours_dir/"
    cp -a "$conformance/act/testdata/$base/." "$wrk_dir/"
    if [[ -n $(ensure_name "$ours_dir/$wf" "$dir") ]]; then
        ensure_name "$wrk_dir/$wf" "$dir" >/dev/null
        named+=("$dir")
    fi
    git_repo "$ours_dir"
    git_repo "$wrk_dir"
    ours_cmd="$(q "$hr") exec -W $(q "$wf") $flags"
    wrk_cmd="$(q "$wrk") run --runtime emulation $(q "$wf")"
    # One probe run each: keep the row only when both exit 0.
    ours_rc=0
    (cd "$ours_dir" && eval "timeout 120 $ours_cmd" >"$out/$safe.probe.ours.log" 2>&1) || ours_rc=$?
    wrk_rc=0
    (cd "$wrk_dir" && eval "timeout 120 $wrk_cmd" >"$out/$safe.probe.wrkflw.log" 2>&1) || wrk_rc=$?
    if ((ours_rc != 0 || wrk_rc != 0)); then
        why=()
        ((ours_rc == 0)) || why+=("hybrid-runner exit $ours_rc: $(last_line "$out/$safe.probe.ours.log")")
        ((wrk_rc == 0)) || why+=("wrkflw exit $wrk_rc: $(last_line "$out/$safe.probe.wrkflw.log")")
        dropped+=("$dir: $(IFS=';'; echo "${why[*]}")")
        continue
    fi
    kept=$((kept + 1))
    bench "act/$dir" "$ours_dir" "$ours_cmd" "$wrk_dir" "$wrk_cmd"
done <<<"$plan"

# ---- per-step overhead ---------------------------------------------------------------------
# 1 and 50 bare `bash -c true` spawns from a bash loop, against one job of 1 and of 50 trivial
# steps for each tool, timed in interleaved rounds (interleave.py: every round runs every
# command once, in random order, so a busy spell of the machine hits all of them alike),
# with the CPU time (user + system) of each run's whole process tree besides its wall time.
printf 'bash -c true\n' >"$work/bare1.sh"
printf 'for _ in $(seq 50); do bash -c true; done\n' >"$work/bare50.sh"
echo "benchmarking the per-step overhead ($baseline_runs interleaved rounds)" >&2
baseline_ok=1
(cd "$synth" && python3 "$here/interleave.py" "$out/baseline.json" "$baseline_runs" "$warmup" \
    "bare1=bash $work/bare1.sh" \
    "bare50=bash $work/bare50.sh" \
    "ours1=$(q "$hr") exec -W .github/workflows/steps1.yml" \
    "ours50=$(q "$hr") exec -W .github/workflows/steps50.yml" \
    "wrkflw1=$(q "$wrk") run --runtime emulation .github/workflows/steps1.yml" \
    "wrkflw50=$(q "$wrk") run --runtime emulation .github/workflows/steps50.yml" \
    >"$out/baseline.log" 2>&1) || baseline_ok=0

# Instructions the tool's own process executes (callgrind; its children, the bash steps, are
# not counted): they do not depend on the machine's load, unlike the times above.
: >"$out/instructions.tsv"
if command -v valgrind >/dev/null; then
    echo "counting instructions (valgrind)" >&2
    for n in 1 50; do
        for tool in bare ours wrkflw; do
            case $tool in
            bare) cmd=(bash "$work/bare$n.sh") ;;
            ours) cmd=("$hr" exec -W ".github/workflows/steps$n.yml") ;;
            wrkflw) cmd=("$wrk" run --runtime emulation ".github/workflows/steps$n.yml") ;;
            esac
            count=$(cd "$synth" && valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                "${cmd[@]}" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n 1)
            printf '%s\t%s\t%s\n' "$tool" "$n" "${count:-}" >>"$out/instructions.tsv"
        done
    done
fi

# ---- report --------------------------------------------------------------------------------
echo
echo "hybrid-runner $("$hr" --version 2>/dev/null | head -n 1) vs $("$wrk" --version 2>/dev/null | head -n 1)"
echo "$(nproc) cores, load average $load_before before / $(cut -d' ' -f1-3 /proc/loadavg) after;" \
    "TMPDIR ${TMPDIR:-/tmp} ($(df -T "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $2}'))"
echo "${runs} runs + ${warmup} warmups each; wall time mean ± sd; peak RSS of one run"
python3 - "$out/records.tsv" "$out/baseline.json" "$baseline_ok" "$out/instructions.tsv" <<'PY'
import json, sys

def stats(path):
    try:
        r = json.load(open(path))["results"][0]
        return r["mean"], r["stddev"] or 0.0
    except (OSError, ValueError, KeyError, IndexError):
        return None

def fmt(s):
    return "failed" if s is None else f"{s[0]*1000:.1f} ± {s[1]*1000:.1f} ms"

def mb(kib):
    return f"{int(kib)/1024:.1f} MB" if kib.strip().isdigit() else "?"

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
table = [("workflow", "ours mean±sd", "wrkflw mean±sd", "ours peak RSS", "wrkflw peak RSS", "faster?")]
wins = 0
for name, ours_j, wrk_j, ours_rss, wrk_rss, status in rows:
    o, w = stats(ours_j), stats(wrk_j)
    if o and w:
        faster = f"yes ({w[0]/o[0]:.1f}x)" if o[0] < w[0] else f"NO ({o[0]/w[0]:.1f}x slower)"
        wins += o[0] < w[0]
    else:
        faster = status
    table.append((name, fmt(o), fmt(w), mb(ours_rss), mb(wrk_rss), faster))
widths = [max(len(r[i]) for r in table) for i in range(6)]
for i, r in enumerate(table):
    print("| " + " | ".join(c.ljust(widths[j]) for j, c in enumerate(r)) + " |")
    if i == 0:
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
print(f"\nfaster than wrkflw on {wins} of {len(rows)} shared workflows")

# Per-step overhead over a bare `bash -c true` spawn, two ways:
# - the per-step formula: (t(tool, 50 steps) - t(50 bare spawns)) / 50, which also spreads the tool's
#   fixed cost (start, workflow loading, teardown) over the 50 steps;
# - per further step: ((t(tool, 50) - t(tool, 1)) - (t(bare 50) - t(bare 1))) / 49, the cost
#   each step adds, without the fixed cost.
# Each from the mean, the median and the minimum wall time, and from the mean CPU time.
if sys.argv[3] == "1":
    import statistics
    data = json.load(open(sys.argv[2]))
    stat = {}
    for name, r in data["results"].items():
        w, c = r["wall"], r["cpu"]
        stat[name] = {"mean": statistics.mean(w), "median": statistics.median(w),
                      "min": min(w), "cpu": statistics.mean(c),
                      "sd": statistics.stdev(w) if len(w) > 1 else 0.0}
    print(f"\nper-step overhead over a bare `bash -c true` spawn ({data['rounds']} interleaved rounds):")
    print("  command    wall mean ± sd       median      min  | CPU mean")
    for name, s in stat.items():
        print(f"  {name:9} {s['mean']*1000:7.1f} ± {s['sd']*1000:5.1f} ms {s['median']*1000:7.1f} ms"
              f" {s['min']*1000:7.1f} ms | {s['cpu']*1000:7.1f} ms")
    for tool, label in (("ours", "hybrid-runner"), ("wrkflw", "wrkflw")):
        parts = []
        for key in ("mean", "median", "min", "cpu"):
            t = {k: v[key] for k, v in stat.items()}
            per_step = (t[f"{tool}50"] - t["bare50"]) / 50 * 1000
            further = ((t[f"{tool}50"] - t[f"{tool}1"]) - (t["bare50"] - t["bare1"])) / 49 * 1000
            parts.append((key, per_step, further))
        print(f"  {label}: per-step formula / per further step, in ms")
        print("    " + "   ".join(f"{k}: {i:.2f} / {f:.2f}" for k, i, f in parts))
        if tool == "ours":
            verdict = ", ".join(f"{k} {'met' if i <= 0.5 else 'MISSED'}" for k, i, _ in parts)
            print(f"    goal <= 0.5 ms by the per-step formula: {verdict}")
else:
    print("\nper-step overhead: the measurement failed (see baseline.log)")

counts = {}
for line in open(sys.argv[4]):
    tool, n, c = (line.rstrip("\n").split("\t") + ["", "", ""])[:3]
    if c.isdigit():
        counts[(tool, n)] = int(c)
if counts:
    print("\ninstructions of the tool's own process (callgrind; the bash steps not counted):")
    for tool in ("bare", "ours", "wrkflw"):
        one, fifty = counts.get((tool, "1")), counts.get((tool, "50"))
        if one and fifty:
            print(f"  {tool:7} 1 step {one/1e6:6.1f} M, 50 steps {fifty/1e6:6.1f} M,"
                  f" each further step {(fifty - one)/49/1e3:6.0f} k")
PY

echo
if ((${#dropped[@]})); then
    echo "act rows dropped (${#dropped[@]}; kept $kept):"
    printf '  - %s\n' "${dropped[@]}"
fi
if ((${#named[@]})); then
    echo "given a top-level name: for wrkflw (same file for both tools): ${named[*]}"
fi
echo "raw results: $out"
exit 0
