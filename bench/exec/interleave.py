#!/usr/bin/env python3
"""Times several commands in interleaved rounds: each round runs every command once, in a
fresh random order, so a change of the machine's load in the middle of the measurement
touches every command alike (hyperfine runs one command's runs back to back, so a busy
minute lands on whichever command ran then).

Usage: interleave.py OUT.json ROUNDS WARMUP NAME=COMMAND...
COMMAND is split like a shell word list (shlex) and run without a shell, in the current
folder, with stdout and stderr discarded. Writes, per command, every wall time and the CPU
time (user + system) of every run, in seconds; a command that fails is reported and stops
the measurement (exit 1).
"""

import json
import random
import resource
import shlex
import subprocess
import sys
import time


def run_once(argv):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, wall, cpu


def main():
    out, rounds, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    commands = {}
    for spec in sys.argv[4:]:
        name, _, command = spec.partition("=")
        commands[name] = shlex.split(command)
    results = {name: {"wall": [], "cpu": []} for name in commands}
    order = list(commands)
    for i in range(warmup + rounds):
        random.shuffle(order)
        for name in order:
            code, wall, cpu = run_once(commands[name])
            if code != 0:
                print(f"{name} exited with {code}: {shlex.join(commands[name])}", file=sys.stderr)
                sys.exit(1)
            if i >= warmup:
                results[name]["wall"].append(wall)
                results[name]["cpu"].append(cpu)
    with open(out, "w") as f:
        json.dump({"rounds": rounds, "warmup": warmup, "results": results}, f)


if __name__ == "__main__":
    main()
