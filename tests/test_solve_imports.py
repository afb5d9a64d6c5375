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
    assert timeout_seen("import sys; sys.argv = ['/venv/bin/deltalab', 'train']") == "24"
    as_module = "import sys; sys.argv = ['-m', {!r}]; sys.orig_argv = ['python', '-m', 'deltalab.cli']"
    assert timeout_seen(as_module.format("train")) == "24"
    assert timeout_seen("import sys; sys.argv = ['-m']; sys.orig_argv = ['python', '-m', 'deltalab']") == "24"
    # the small-work commands: their threads never get a product, so they sleep at once
    assert timeout_seen("import sys; sys.argv = ['/venv/bin/deltalab', 'solve']") == "4"
    assert timeout_seen(as_module.format("check")) == "4"
    assert timeout_seen("import sys; sys.argv = ['/venv/bin/deltalab', 'generate']", OPENBLAS_THREAD_TIMEOUT="28") \
        == "28"
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


# the engine a recurrent solve never runs: its names load on first use (deltalab.lazy)
NOT_ON_THE_RNN_PATH = ("deltalab.nn.layers", "deltalab.nn.normalization", "deltalab.ops.conv", "deltalab.ops.pooling",
                       "deltalab.ops.normalization", "deltalab.fast.conv", "deltalab.models.layered",
                       "deltalab.models.cells", "deltalab.losses", "deltalab.functional", "deltalab.factories",
                       "deltalab.io.module_kinds", "deltalab.io.registry",
                       "numpy.random")  # all its parameters are filled: nothing random is drawn


def test_a_recurrent_solve_does_not_load_the_layers_convolutions_or_the_module_registry():
    modules = modules_after_solve("rnn-many-to-many-identity", "terminal")
    assert [m for m in NOT_ON_THE_RNN_PATH if m in modules] == []
    assert "deltalab.nn.layers" in modules_after_solve("mlp-relu-exam-network", "json")


def run_python(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_every_lazy_name_is_the_object_its_module_defines():
    code = ("import deltalab as dl, deltalab.factories as f, importlib, sys\n"
            "assert set(f.__all__) <= set(dl.__all__) and {'Linear', 'nn', 'arange'} <= set(dir(dl.nn)) | set(dir(dl))\n"
            "for package in (dl, dl.nn, dl.models, dl.ops):\n"
            "    for name in package.__all__:\n"
            "        assert getattr(package, name) is not None, (package.__name__, name)\n"
            "assert all(getattr(dl, n) is getattr(f, n) for n in f.__all__)\n"
            "import deltalab.nn.functional as F\n"
            "assert F is dl.functional is dl.nn.functional\n"
            "import deltalab.ops.dropout, deltalab.summary, deltalab.gradcheck  # submodules named like functions\n"
            "assert callable(dl.ops.dropout) and callable(dl.summary) and callable(dl.gradcheck)\n"
            "print('ok')")
    assert run_python(code).strip() == "ok"


def test_a_module_built_before_the_registry_loads_can_still_be_saved():
    """The built-in kinds register on the registry's first lookup; the ones described by their
    constructor arguments record them from their definition (RECORDED_BUILT_INS): every one of
    them, built first, gives the same config as when built after the registry loaded."""
    code = ("import sys, deltalab as dl\n"
            "m = dl.nn.Sequential(dl.nn.Linear(2, 3), dl.nn.LeakyReLU(0.2), dl.nn.Dropout(0.25), dl.nn.Softmax(dim=1))\n"
            "e = dl.models.ElmanNetwork(2, 3, 1)\n"
            "assert 'deltalab.io.module_kinds' not in sys.modules\n"
            "from deltalab.io import architecture, registry\n"
            "from deltalab.io.arguments import RECORDED_BUILT_INS, qualified_name\n"
            "print(architecture.to_config(m)); print(architecture.to_config(e))\n"
            "import functools\n"
            "default = [k.cls for k in map(registry.by_name, registry.names()) if isinstance(k.arguments, functools.partial)]\n"
            "assert {qualified_name(c) for c in default} == set(RECORDED_BUILT_INS), sorted(map(qualified_name, default))\n")
    configs = run_python(code).splitlines()
    assert "'negative_slope': 0.2" in configs[0] and "'p': 0.25" in configs[0] and "'dim': 1" in configs[0]
    assert "'hidden_size': 3" in configs[1]


def test_draws_a_filled_model_skips_are_made_before_any_later_draw():
    """A model built inside ``draws_overwritten`` (every parameter then filled) draws nothing; the
    generator, when first asked, makes those uniform draws first, so every later number is the
    one it would have been (bounds 0 included: a draw is one double whatever its range)."""
    import numpy as np

    from deltalab import random as dl_random

    for shapes in ([(3, 4), (3,), (2, 3)], [(5,), ()], [(0,), (2, 2)]):
        for bound in (0.5, 0.0):
            reference = np.random.default_rng(7)
            drawn = [reference.uniform(-bound, bound, size=shape) for shape in shapes]
            dl_random.reseed(7)
            with dl_random.draws_overwritten():
                skipped = [dl_random.uniform(-bound, bound, shape) for shape in shapes]
            assert [np.shape(a) for a in skipped] == [np.shape(a) for a in drawn]
            np.testing.assert_array_equal(dl_random.generator().random(6), reference.random(6))
    # outside the block, or once the generator exists, uniform draws as before
    dl_random.manual_seed(3)
    np.testing.assert_array_equal(dl_random.uniform(-1, 1, (4,)), np.random.default_rng(3).uniform(-1, 1, size=(4,)))
    dl_random.manual_seed(0)


# standard-library modules a solve's start does not need: pathlib (public functions return a Path,
# a solve only strings), shutil with the bz2 / lzma / zlib it loads (argparse and the terminal
# report ask it only for the terminal's width: deltalab.text.terminal_columns)
NOT_ON_A_SOLVES_PATH = ("pathlib", "shutil", "bz2", "lzma")


@pytest.mark.parametrize("example, fmt", [("rnn-many-to-many-identity", "terminal"),
                                          ("mlp-relu-exam-network", "json"),
                                          ("cnn-feature-detectors", "terminal"),
                                          ("eq-lstm-cell", "markdown")])
def test_a_solve_does_not_import_pathlib_or_shutil(example, fmt):
    modules = modules_after_solve(example, fmt)
    assert [m for m in NOT_ON_A_SOLVES_PATH if m in modules] == []


def blas_threads_seen(prelude, **env):
    """(OPENBLAS_NUM_THREADS, OMP_NUM_THREADS) after ``prelude`` and ``import deltalab`` in a fresh
    interpreter whose environment has no thread variable but those in ``env``."""
    code = prelude + ("\nimport os, deltalab\n"
                      "print(os.environ.get('OPENBLAS_NUM_THREADS'), os.environ.get('OMP_NUM_THREADS'))")
    base = {k: v for k, v in clean_env().items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                "GOTO_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env},
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return tuple(done.stdout.split())


def test_the_small_work_commands_run_openblas_on_one_thread_unless_the_user_chose():
    script = "import sys; sys.argv = ['/venv/bin/deltalab', {!r}, '--example', 'x']"
    for command in ("solve", "check", "generate"):
        assert blas_threads_seen(script.format(command)) == ("1", "None"), command
    # python -m deltalab.cli solve ... (argv[0] is still "-m" while deltalab is imported)
    module = ("import sys; sys.argv = ['-m', 'solve', '--example', 'x']; "
              "sys.orig_argv = ['python', '-m', 'deltalab.cli']")
    assert blas_threads_seen(module) == ("1", "None")
    # the user's own count, in any variable OpenBLAS reads: left alone
    assert blas_threads_seen(script.format("solve"), OPENBLAS_NUM_THREADS="2") == ("2", "None")
    assert blas_threads_seen(script.format("solve"), OMP_NUM_THREADS="2") == ("None", "2")
    assert blas_threads_seen(script.format("solve"), GOTO_NUM_THREADS="2") == ("None", "None")
    # the commands with big products, --help, a program importing deltalab, NumPy already loaded
    assert blas_threads_seen(script.format("train")) == ("None", "None")
    assert blas_threads_seen("import sys; sys.argv = ['/venv/bin/deltalab', '--help']") == ("None", "None")
    assert blas_threads_seen("import sys; sys.argv = ['program.py', 'solve']") == ("None", "None")
    assert blas_threads_seen("import numpy, sys; sys.argv = ['/venv/bin/deltalab', 'solve']") == ("None", "None")


def test_a_solve_with_the_default_threads_gives_the_same_text_as_with_two():
    """The one-thread default changes no number: the same output as OpenBLAS on two threads."""
    outputs = []
    for threads in (None, "2"):
        env = {k: v for k, v in clean_env().items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        if threads:
            env["OPENBLAS_NUM_THREADS"] = threads
        done = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", "--example", "cnn-conv-pool-28x28x3",
                               "--format", "json"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("columns", [None, "50", "0", "-3", "wide", ""])
def test_terminal_columns_is_shutils_width(monkeypatch, columns):
    import shutil

    from deltalab.text import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns(80) == shutil.get_terminal_size((80, 24)).columns
    assert terminal_columns(57) == shutil.get_terminal_size((57, 24)).columns


def test_an_examples_file_is_the_string_of_its_path():
    from deltalab.examples import FOLDER, example_file, example_names, example_path
    from deltalab.errors import SpecError

    assert str(FOLDER) and all(example_file(n) == str(example_path(n)) for n in example_names())
    # a name with a path in it goes through pathlib, as before
    assert example_file("./rnn-many-to-many-identity") == str(example_path("./rnn-many-to-many-identity"))
    for wrong in ("no-such-example", "", "rnn-many-to-many-identity/"):
        with pytest.raises(SpecError):
            example_file(wrong)
