"""What ``deltalab solve`` loads: a worked solution starts fast because it imports only what it
shows (benchmarks/README.md, "`deltalab solve` latency"); and the command (only the command's own
process, see deltalab.startup) keeps OpenBLAS's idle threads from spinning through its short run
and leaves its objects to the exit instead of a last collection over all of them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

# never on a solve's path without the option that asks for them
HEAVY = ("torch", "numba", "matplotlib", "networkx", "sympy", "scipy", "rich", "deltalab.io.interop",
         "deltalab.equations.exact", "deltalab.training", "deltalab.marking", "deltalab.exercises")
FORMAT_MODULES = {"terminal": "deltalab.report.terminal", "markdown": "deltalab.report.markdown",
                  "latex": "deltalab.report.latex", "json": "deltalab.report.json_report",
                  "html": "deltalab.report.html_report"}
LAYER_REGISTRY = ("deltalab.problems.layers", "deltalab.problems.layers.base")
ONLY_FOR_MISTAKES = ("difflib",)  # did-you-mean hints: a correct problem file never needs them


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["PYTHONPATH"] = SRC
    env.update(extra)
    return env


def modules_after_solve(example, fmt):
    """The modules a fresh ``deltalab solve --example EXAMPLE --format FMT`` (output piped) imports."""
    code = ("import json, os, sys\n"
            "from deltalab.cli import main\n"
            "sys.stdout = open(os.devnull, 'w')\n"
            f"code = main(['solve', '--example', {example!r}, '--format', {fmt!r}])\n"
            "sys.stderr.write(json.dumps([code, sorted(sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    code, modules = json.loads(done.stderr.strip().splitlines()[-1])
    assert code == 0
    return set(modules)


@pytest.mark.parametrize("example, fmt", [("rnn-many-to-many-identity", "terminal"),
                                          ("mlp-relu-exam-network", "json"),
                                          ("eq-lstm-cell", "markdown")])
def test_a_solve_imports_only_its_own_format_and_nothing_heavy(example, fmt):
    modules = modules_after_solve(example, fmt)
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY + ONLY_FOR_MISTAKES))
    assert loaded == [], f"{example} --format {fmt} imported {loaded}"
    others = sorted(m for f, m in FORMAT_MODULES.items() if f != fmt and m in modules)
    assert FORMAT_MODULES[fmt] in modules and others == [], f"other formats' modules imported: {others}"


def test_a_recurrent_solve_does_not_load_the_layer_registry():
    """The layer kinds (dense, conv2d, pooling, ...) belong to mlp / cnn problems only."""
    modules = modules_after_solve("rnn-many-to-many-identity", "terminal")
    assert [m for m in LAYER_REGISTRY if m in modules] == []
    assert "deltalab.problems.layers" in modules_after_solve("cnn-feature-detectors", "terminal")


def timeout_seen(prelude, **env):
    """OPENBLAS_THREAD_TIMEOUT after ``prelude`` and ``import deltalab`` in a fresh interpreter."""
    code = prelude + "\nimport os, deltalab\nprint(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(**env),
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_only_the_command_sets_openblass_thread_timeout_and_never_over_the_users():
    # a program that imports deltalab: its environment is left alone
    assert timeout_seen("") == "None"
    # the console script (sys.argv[0] is the script) and python -m deltalab.cli / python -m deltalab
    assert timeout_seen("import sys; sys.argv = ['/venv/bin/deltalab', 'solve']") == "24"
    assert timeout_seen("import sys; sys.argv = ['-m', 'solve']; sys.orig_argv = ['python', '-m', 'deltalab.cli']") == "24"
    assert timeout_seen("import sys; sys.argv = ['-m']; sys.orig_argv = ['python', '-m', 'deltalab']") == "24"
    # another package's -m, the user's own value, and NumPy already loaded (too late to matter): unchanged
    assert timeout_seen("import sys; sys.argv = ['-m']; sys.orig_argv = ['python', '-m', 'pytest']") == "None"
    assert timeout_seen("import sys; sys.argv = ['/venv/bin/deltalab']", OPENBLAS_THREAD_TIMEOUT="28") == "28"
    assert timeout_seen("import sys, numpy; sys.argv = ['/venv/bin/deltalab']") == "None"


def test_the_command_run_as_a_module_still_solves():
    """``python -m deltalab.cli`` (the benchmark's command) with the timeout set: the same text as a
    library call of the same solve."""
    done = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", "--example", "rnn-many-to-many-identity",
                           "--format", "json"], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    code = ("import sys\nfrom deltalab.cli import main\nsys.exit(main(['solve', '--example', "
            "'rnn-many-to-many-identity', '--format', 'json']))")
    library = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert library.returncode == 0 and library.stdout == done.stdout


def frozen_after_main(prelude, call):
    """gc.get_freeze_count() after ``call`` of deltalab.cli.main in a fresh interpreter."""
    code = (prelude + "\nimport gc, os, sys\nfrom deltalab.cli import main\nsys.stdout = open(os.devnull, 'w')\n"
            f"code = {call}\nsys.stderr.write(f'{{code}} {{gc.get_freeze_count()}}')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    code, frozen = done.stderr.split()[-2:]
    assert code == "0"
    return int(frozen)


def test_only_the_commands_own_process_freezes_its_objects_for_the_exit():
    argv = "['solve', '--example', 'rnn-many-to-many-identity']"
    # the console script: main() with the process's own arguments
    assert frozen_after_main(f"import sys; sys.argv = ['/venv/bin/deltalab'] + {argv}", "main()") > 0
    # a program (a test, a notebook) calling main: its collector is left as it was
    assert frozen_after_main("", f"main({argv})") == 0
    assert frozen_after_main(f"import sys; sys.argv = ['program.py'] + {argv}", "main()") == 0


def collector_after_import(prelude):
    """(gc.isenabled(), gc.get_freeze_count() > 0) after ``prelude`` and ``import deltalab``."""
    code = prelude + "\nimport gc, deltalab\nprint(gc.isenabled(), gc.get_freeze_count() > 0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_the_command_freezes_what_its_imports_created_and_collects_again_after():
    assert collector_after_import("import sys; sys.argv = ['/venv/bin/deltalab']") == ["True", "True"]
    assert collector_after_import("") == ["True", "False"]  # a program importing deltalab: untouched
    assert collector_after_import("import gc, sys; gc.disable(); sys.argv = ['/venv/bin/deltalab']") == ["False", "False"]
