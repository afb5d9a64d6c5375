"""``deltalab solve`` latency: process start to exit, median of repeated runs per example.

    python benchmarks/solve_latency.py                       # this checkout's src/
    python benchmarks/solve_latency.py --src /old/src --src src --runs 11   # compare two trees

Wall time is process start to exit (median, fastest run, lower quartile); CPU time (user +
system of the child) is less sensitive to other load on a shared machine.  Each run is a fresh ``python -m deltalab.cli solve ...`` (the command
as users start it, like bench.py's latency row) with ``PYTHONPATH`` set to the tree under test, output
to /dev/null; with several trees the runs alternate (A B, B A, A B, ...) so both see the same machine
load and neither always goes first.  Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the first is issue 18's latency row (bench.py's solve_latency_workload)
EXAMPLES = ("rnn-many-to-many-identity", "mlp-relu-exam-network", "cnn-feature-detectors", "rnn-many-to-many-softmax",
            "eq-lstm-cell")


def one_run(src, example, fmt, bytecode):
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
    if bytecode:  # cached .pyc files as after a pip install, kept per tree outside the source
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "deltalab-latency-pyc",
                                                  str(abs(hash(str(Path(src).resolve())))))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", "--example", example, "--format", fmt],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{src}: solve --example {example} failed: {done.stderr.decode()[-300:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", help="a source tree (the directory holding deltalab/); repeatable")
    parser.add_argument("--runs", type=int, default=11, help="runs per example and tree (default 11)")
    parser.add_argument("--format", default="json", help="solve's --format (default json)")
    parser.add_argument("--examples", default=",".join(EXAMPLES), help="comma-separated example names")
    parser.add_argument("--bytecode", action="store_true",
                        help="use cached .pyc files even where PYTHONDONTWRITEBYTECODE is set (as an installed "
                             "package runs); without it every run also compiles the sources it imports")
    args = parser.parse_args(argv)
    trees = args.src or [str(Path(__file__).resolve().parent.parent / "src")]
    examples = args.examples.split(",")
    times = {(tree, example): [] for tree in trees for example in examples}
    for example in examples:
        for tree in trees:
            one_run(tree, example, args.format, args.bytecode)  # warm the file cache and the .pyc files
        for round_ in range(args.runs):
            for tree in trees if round_ % 2 == 0 else trees[::-1]:  # alternate who goes first
                times[tree, example].append(one_run(tree, example, args.format, args.bytecode))
    width = max(len(e) for e in examples)
    names = [Path(t).resolve().parent.name or t for t in trees]
    # the median, and the fastest run and the lower quartile: on a shared host the slow runs are
    # other tenants' load, so the low end compares two trees more steadily than the median
    print(f"{'example':<{width}}  " + "  ".join(f"{name + ' wall s':>22} {'cpu s':>6} {'min':>6} {'p25':>6}"
                                              for name in names))
    for example in examples:
        cells = []
        for tree in trees:
            walls = sorted(t for t, _ in times[tree, example])
            cpu = statistics.median(c for _, c in times[tree, example])
            cells.append(f"{statistics.median(walls):22.3f} {cpu:6.3f} {walls[0]:6.3f} {walls[len(walls) // 4]:6.3f}")
        print(f"{example:<{width}}  " + "  ".join(cells))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}; {args.runs} runs per cell, format {args.format}, "
          + ("cached bytecode" if args.bytecode or not os.environ.get("PYTHONDONTWRITEBYTECODE") else
             "no bytecode cache (PYTHONDONTWRITEBYTECODE: sources compiled on every run)"))


if __name__ == "__main__":
    main()
