"""``deltalab check`` timings (issue 16): a class of 100 generated submissions of the lecture's
many-to-many RNN graded in one command (goal < 5 s), and one check from process start
(goal < 0.3 s).

    python benchmarks/check_bench.py             # 5 runs each, median and best, wall and CPU

Wall time is what a user waits; CPU time (user + system of the child) is what the command
itself cost, which is the fairer number on a shared machine.  Not part of the test suite.
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLE = "rnn-many-to-many-identity"


def submissions(directory, count=100, seed=0):
    """Every gradient and update of the example, a random one wrong in half of them."""
    from deltalab.marking.grading import quantity_nodes
    from deltalab.examples import example_path
    from deltalab.problem import load_problem
    from deltalab.recorder import solve_problem

    nodes = quantity_nodes(solve_problem(load_problem(example_path(EXAMPLE))).steps[0].derivation)
    rng = np.random.default_rng(seed)

    def text(a):
        a = np.asarray(a)
        return f"{float(a):.4f}" if a.ndim == 0 else "[" + ", ".join(text(v) for v in a) + "]"

    paths = []
    for i in range(count):
        wrong = rng.choice(["W1", "H1", "b1", "W2", "b2"]) if rng.random() < 0.5 else None
        lines = [f'student = "student {i:03d}"']
        for section in ("gradients", "parameters_after"):
            lines.append(f"[{section}]")
            for (s, key), node in nodes.items():
                if s == section:
                    lines.append(f'"{key}" = {text(node.value + (0.25 if key == wrong else 0.0))}')
        path = Path(directory) / f"s{i:03d}.toml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def timed(command):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report(name, runs, goal):
    walls, cpus = zip(*runs)
    print(f"{name}: wall median {statistics.median(walls):.3f} s (best {min(walls):.3f}), "
          f"CPU median {statistics.median(cpus):.3f} s (best {min(cpus):.3f}); goal < {goal} s; "
          f"load average {os.getloadavg()[0]:.1f}")


def main(repeats=5):
    cli = [sys.executable, "-m", "deltalab.cli", "check", "--example", EXAMPLE]
    with tempfile.TemporaryDirectory() as tmp:
        paths = submissions(tmp)
        one = [timed(cli + [str(paths[0]), "--format", "json"]) for _ in range(repeats)]
        batch = [timed(cli + [str(p) for p in paths] + ["--csv", str(Path(tmp) / "grades.csv")])
                 for _ in range(repeats)]
    report("one check from process start", one, 0.3)
    report("100 submissions -> CSV", batch, 5)


if __name__ == "__main__":
    main()
