#!/usr/bin/env python3
"""A large generated CI workflow, the same bytes every time, for bench/workflows/large.sh.

Shaped like the big generated CI files of real projects: a `setup` job whose outputs the
others read, build jobs per platform, architecture and profile, each followed by a test job
with a 9-shard matrix (`include` entries give each shard a suite), lint jobs with a matrix,
a chain of release stages each needing the previous one, and a status job that needs every
job. Steps carry `if:` conditions, `env:`, `with:` inputs, cache keys with `hashFiles()`,
and long multi-line `run:` scripts with expressions in them.

    python3 bench/workflows/gen-large.py [BYTES] > ci.yml

12 build jobs (3 platforms x 2 architectures x 2 profiles) and their 12 test jobs, so
2 + 24 + 12 + 1 = 39 jobs and 1 + 8 (lint) + 12 + 108 + 12 + 1 = 142 runs. Generated steps
are added to those 24 jobs one job at a time until the file has BYTES (default 424,602, the
size of deno's ci.generated.yml, the largest real CI file of bench/workflows/large/SOURCES).
"""
import sys

TARGET = int(sys.argv[1]) if len(sys.argv) > 1 else 424_602

PLATFORMS = ["linux", "macos", "windows"]
ARCHES = ["x86_64", "aarch64"]
PROFILES = ["debug", "release"]
SHARDS = 9


def runner(platform, arch):
    return {
        "linux": "ubuntu-24.04" if arch == "x86_64" else "ubuntu-24.04-arm",
        "macos": "macos-13" if arch == "x86_64" else "macos-14",
        "windows": "windows-2022" if arch == "x86_64" else "windows-11-arm",
    }[platform]


def script(lines, indent):
    pad = " " * indent
    return "".join(f"{pad}{line}\n" for line in lines)


def run_lines(kind, combo, n):
    """A long shell script: n commands, each reading some context."""
    out = ["set -euo pipefail", f'echo "::group::{kind} {combo}"']
    for i in range(n):
        out += [
            f'if [ "${{{{ matrix.shard || 0 }}}}" != "{i % SHARDS}" ] || [ "${{{{ github.event_name }}}}" = "push" ]; then',
            f'  cargo {kind} --locked --target {combo} -p crate_{i:03d} --features "f{i % 7},g{i % 5}" \\',
            f'    -- --test-threads=${{{{ env.THREADS }}}} --skip "flaky_{i}" 2>&1 | tee -a target/{kind}-{i}.log',
            "fi",
        ]
    out += [
        'echo "sha=${{ github.sha }} ref=${{ github.ref }} run=${{ github.run_id }}"',
        'echo "result=ok" >> "$GITHUB_OUTPUT"',
        "echo ::endgroup::",
    ]
    return out


def step_block(name, cond, lines, env=None, sid=None):
    s = f"      - name: {name}\n"
    if sid:
        s += f"        id: {sid}\n"
    if cond:
        s += f"        if: {cond}\n"
    if env:
        s += "        env:\n" + "".join(f"          {k}: {v}\n" for k, v in env.items())
    s += "        run: |-\n" + script(lines, 10)
    return s


def common_steps(platform, arch, profile):
    key = f"{platform}-{arch}-{profile}"
    return (
        "      - name: Configure git\n"
        "        run: |-\n"
        "          git config --global core.symlinks true\n"
        "          git config --global fetch.parallel 32\n"
        "      - name: Clone repository\n"
        "        uses: actions/checkout@v4\n"
        "        with:\n"
        "          fetch-depth: ${{ github.event_name == 'pull_request' && 5 || 0 }}\n"
        "          submodules: recursive\n"
        "      - name: Install Rust\n"
        "        uses: dtolnay/rust-toolchain@stable\n"
        "        with:\n"
        f"          targets: {arch}-{platform}\n"
        "          components: rustfmt, clippy\n"
        "      - name: Cache cargo home\n"
        "        uses: actions/cache@v4\n"
        "        with:\n"
        "          path: |-\n"
        "            ~/.cargo/registry/index\n"
        "            ~/.cargo/registry/cache\n"
        "            ~/.cargo/git/db\n"
        f"          key: '{key}-cargo-home-${{{{ hashFiles(''Cargo.lock'') }}}}'\n"
        f"          restore-keys: '{key}-cargo-home-'\n"
    )


def build_job(platform, arch, profile, steps):
    combo = f"{arch}-{platform}"
    job_id = f"build-{profile}-{platform}-{arch}"
    cond = (
        "needs.setup.outputs.skip_build != 'true' && "
        f"(github.event_name == 'push' || contains(github.event.pull_request.labels.*.name, 'ci-{platform}') "
        f"|| needs.setup.outputs.full == 'true')"
    )
    s = (
        f"  {job_id}:\n"
        f"    name: 'build {profile} {platform}-{arch}'\n"
        "    needs:\n      - setup\n"
        f"    if: \"{cond}\"\n"
        f"    runs-on: '${{{{ github.repository == ''example/big'' && ''{runner(platform, arch)}-xl'' || ''{runner(platform, arch)}'' }}}}'\n"
        "    timeout-minutes: 240\n"
        "    outputs:\n"
        "      artifact: ${{ steps.pack.outputs.name }}\n"
        "    env:\n"
        f"      PROFILE: {profile}\n"
        f"      TARGET: {combo}\n"
        "      THREADS: ${{ needs.setup.outputs.threads }}\n"
        "    defaults:\n      run:\n        shell: bash\n"
        "    steps:\n"
    )
    s += common_steps(platform, arch, profile)
    for i in range(steps):
        s += step_block(
            f"Build part {i} ({profile})",
            f"needs.setup.outputs.part_{i % 4} == 'true' || github.ref == 'refs/heads/main'",
            run_lines("build", combo, 6),
            env={"PART": str(i), "RUSTFLAGS": f"'-C opt-level={i % 4} -D warnings'"},
            sid=f"part_{i}",
        )
    s += step_block(
        "Pack",
        "success()",
        [f"tar -czf {job_id}.tar.gz target/{profile}", f'echo "name={job_id}" >> "$GITHUB_OUTPUT"'],
        sid="pack",
    )
    s += (
        "      - name: Upload\n"
        "        uses: actions/upload-artifact@v4\n"
        "        with:\n"
        f"          name: {job_id}\n"
        f"          path: {job_id}.tar.gz\n"
    )
    return job_id, s


def test_job(platform, arch, profile, build_id, steps):
    combo = f"{arch}-{platform}"
    job_id = f"test-{profile}-{platform}-{arch}"
    s = (
        f"  {job_id}:\n"
        f"    name: 'test {profile} {platform}-{arch} (${{{{ matrix.shard }}}}/{SHARDS}) ${{{{ matrix.suite }}}}'\n"
        f"    needs:\n      - setup\n      - {build_id}\n"
        f"    if: \"needs.{build_id}.result == 'success' && !cancelled()\"\n"
        f"    runs-on: {runner(platform, arch)}\n"
        "    timeout-minutes: 180\n"
        "    strategy:\n"
        "      fail-fast: ${{ github.event_name == 'pull_request' }}\n"
        "      max-parallel: 6\n"
        "      matrix:\n"
        f"        shard: [{', '.join(str(k) for k in range(SHARDS))}]\n"
        "        include:\n"
    )
    for shard in range(SHARDS):
        s += (
            f"          - shard: {shard}\n"
            f"            suite: {['unit', 'integration', 'spec', 'node_compat', 'wpt', 'bench', 'lsp', 'npm', 'fmt'][shard]}\n"
            f"            flags: '--shard {shard + 1}/{SHARDS} --jobs 4'\n"
        )
    s += (
        "    env:\n"
        f"      PROFILE: {profile}\n"
        f"      TARGET: {combo}\n"
        "      THREADS: ${{ matrix.shard == 0 && 1 || 4 }}\n"
        "    steps:\n"
    )
    s += common_steps(platform, arch, profile)
    s += (
        "      - name: Download\n"
        "        uses: actions/download-artifact@v4\n"
        "        with:\n"
        f"          name: ${{{{ needs.{build_id}.outputs.artifact }}}}\n"
    )
    for i in range(steps):
        s += step_block(
            f"Test part {i} of ${{{{ matrix.suite }}}}",
            f"matrix.suite != 'fmt' && (matrix.shard == {i % SHARDS} || needs.setup.outputs.full == 'true')",
            run_lines("test", combo, 5),
            env={"SUITE": "${{ matrix.suite }}", "FLAGS": "${{ matrix.flags }}"},
        )
    return job_id, s


def head():
    return (
        "# Generated by bench/workflows/gen-large.py: a benchmark input, not a real project's CI.\n"
        "name: big-ci\n"
        "on:\n"
        "  push:\n    branches: [main]\n    tags: ['*']\n"
        "  pull_request:\n    types: [opened, reopened, synchronize, ready_for_review]\n"
        "  workflow_dispatch:\n"
        "    inputs:\n"
        "      full:\n        description: Run everything\n        type: boolean\n        default: false\n"
        "permissions:\n  contents: read\n"
        "concurrency:\n"
        "  group: '${{ github.workflow }}-${{ github.head_ref || github.run_id }}'\n"
        "  cancel-in-progress: true\n"
        "env:\n"
        "  CARGO_TERM_COLOR: always\n"
        "  RUST_BACKTRACE: full\n"
        "jobs:\n"
        "  setup:\n"
        "    runs-on: ubuntu-latest\n"
        "    outputs:\n"
        "      skip_build: ${{ steps.check.outputs.skip_build }}\n"
        "      full: ${{ steps.check.outputs.full }}\n"
        "      threads: ${{ steps.check.outputs.threads }}\n"
        "      part_0: ${{ steps.check.outputs.part_0 }}\n"
        "      part_1: ${{ steps.check.outputs.part_1 }}\n"
        "      part_2: ${{ steps.check.outputs.part_2 }}\n"
        "      part_3: ${{ steps.check.outputs.part_3 }}\n"
        "    steps:\n"
        "      - id: check\n"
        "        run: |-\n"
        "          echo skip_build=false >> $GITHUB_OUTPUT\n"
        "          echo full=${{ inputs.full || github.event_name == 'push' }} >> $GITHUB_OUTPUT\n"
        "          echo threads=4 >> $GITHUB_OUTPUT\n"
        "          for i in 0 1 2 3; do echo part_$i=true >> $GITHUB_OUTPUT; done\n"
    )


def lint_job():
    return (
        "  lint:\n"
        "    name: 'lint ${{ matrix.os }}'\n"
        "    needs: setup\n"
        "    runs-on: ${{ matrix.os }}\n"
        "    strategy:\n"
        "      matrix:\n"
        "        os: [ubuntu-latest, macos-latest, windows-latest]\n"
        "        check: [fmt, clippy, deny]\n"
        "        exclude:\n"
        "          - os: windows-latest\n            check: deny\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: cargo ${{ matrix.check }} --all\n"
    )


def chain(n, first_needs):
    s, prev = "", first_needs
    for i in range(n):
        s += (
            f"  stage-{i}:\n"
            f"    needs: [{prev}]\n"
            "    runs-on: ubuntu-latest\n"
            f"    if: \"github.ref == 'refs/heads/main' && needs.{prev}.result == 'success'\"\n"
            "    steps:\n"
            f"      - run: echo stage {i} after ${{{{ needs.{prev}.result }}}}\n"
        )
        prev = f"stage-{i}"
    return s, prev


def workflow(steps, extra):
    """The whole file with `steps` generated steps in each build job (one fewer in tests),
    one more in the first `extra` of those 24 jobs."""
    body = head() + lint_job()
    ids = ["setup", "lint"]
    for platform in PLATFORMS:
        for arch in ARCHES:
            for profile in PROFILES:
                k = len(ids) - 2
                b_id, b = build_job(platform, arch, profile, steps + (k < extra))
                t_id, t = test_job(platform, arch, profile, b_id, steps - 1 + (k + 1 < extra))
                body += b + t
                ids += [b_id, t_id]
    stages, _ = chain(12, ids[2])
    body += stages
    ids += [f"stage-{k}" for k in range(12)]
    body += (
        "  ci-status:\n"
        "    if: always()\n"
        "    runs-on: ubuntu-latest\n"
        "    needs:\n" + "".join(f"      - {j}\n" for j in ids) +
        "    steps:\n"
        "      - name: Ensure CI success\n"
        "        if: contains(needs.*.result, 'failure') || contains(needs.*.result, 'cancelled')\n"
        "        run: exit 1\n"
    )
    return body


def main():
    steps, extra = 2, 0
    while len(workflow(steps, extra).encode()) < TARGET and steps < 200:
        extra += 1
        if extra == 24:
            steps, extra = steps + 1, 0
    sys.stdout.write(workflow(steps, extra))


main()
