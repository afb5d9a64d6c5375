"""Mutated built-in examples against the bad-input contract of ``deltalab solve`` and ``summary``.

Hypothesis mutates the parsed examples (a value swapped for a hostile one, a key dropped or
added, a list grown or cut, the text truncated) and runs the command line in process.  Every
mutant must end in exactly one of:

- exit 0 with nothing on stderr;
- exit 1 with one stderr line saying a check failed or a result is not finite;
- exit 2 with one stderr line ``deltalab: error: …`` and no traceback;

and ``summary`` must refuse exactly the files ``solve`` refuses, with the same line (a file with
unknown symbols excepted: only ``solve --exact`` takes those, while summary shows their shapes).
CI runs a bounded number of mutants; ``DELTALAB_MUTANTS=5000`` runs thousands locally.
"""
import contextlib
import copy
import io
import json
import math
import os
import re
import tempfile
import time
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltalab.cli import main

EXAMPLES = sorted((Path(__file__).parent.parent / "src" / "deltalab" / "examples").glob("*.toml"))
MUTANTS = int(os.environ.get("DELTALAB_MUTANTS", "120"))
SECONDS_PER_RUN = 30.0
ONE_LINE_EXIT_1 = re.compile(r"^deltalab: (check failed: |warning: .*not finite|error: .*became (-?inf|nan))")
TALLY = {"tried": 0, "held": 0, "exit 0": 0, "exit 1": 0, "exit 2": 0}

HOSTILE_VALUES = [
    0, -1, 1, 2, 3, 7, 10_000, 10_001, 1_000_000, 2**31, 2**63 - 1, -2**63, 2**63, 2**70, 10**30,
    0.0, -0.0, 0.5, -3.5, 1e-300, 1e300, -1e300, 1e150, math.nan, math.inf, -math.inf,
    True, False, "", "same", "relu", "softmax", "sigmoid", "x", "L", "w", "\x1b[31mred\x07", "[/bold]",
    "ｗ", "x" * 300, [], [[]], [1], [1, 2], [[1, 2], [3]], [True, 1], [[1.0, 2.0], [3.0, 4.0]],
    [1e308, 1e308], ["s", 1.0], {}, {"a": 1}, [[[[[[[[[1]]]]]]]]],
]


# ------------------------------------------------------------------ a small TOML writer
def _key(key):
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"


def to_toml(data, prefix=""):
    lines, tables = [], []
    for key, value in data.items():
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        if isinstance(value, dict) and value:
            tables.append((name, value, False))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((name, value, True))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    text = "\n".join(lines) + "\n"
    for name, value, array in tables:
        for item in value if array else [value]:
            text += f"\n{'[[' if array else '['}{name}{']]' if array else ']'}\n" + to_toml(item, name)
    return text


# ------------------------------------------------------------------ mutations
def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


def _get(data, path):
    for part in path:
        data = data[part]
    return data


@st.composite
def mutants(draw):
    source = draw(st.sampled_from(EXAMPLES))
    text = source.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent, last = _get(data, path[:-1]), path[-1]
        kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "grow", "shrink", "scale"]))
        if kind == "replace":
            parent[last] = draw(st.sampled_from(HOSTILE_VALUES).map(copy.deepcopy))
        elif kind == "delete":
            del parent[last]
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["stride", "padding", "steps", "bias", "typo", "time_steps", "seed", "ｗ"]))] = \
                draw(st.sampled_from(HOSTILE_VALUES).map(copy.deepcopy))
        elif kind == "grow" and isinstance(parent[last], list) and parent[last]:
            parent[last] = parent[last] + parent[last][-1:] * draw(st.sampled_from([1, 2, 50]))
        elif kind == "shrink" and isinstance(parent[last], list):
            parent[last] = parent[last][:-1]
        elif kind == "scale" and isinstance(parent[last], (int, float)) and not isinstance(parent[last], bool):
            parent[last] = parent[last] * draw(st.sampled_from([-1, 0, 10, 1e6, 1e200]))
    mutated = to_toml(data)
    if draw(st.integers(0, 9)) == 0:  # now and then a broken file: cut at a random place
        mutated = mutated[: draw(st.integers(0, len(mutated)))]
    return source.name, mutated


# ------------------------------------------------------------------ the contract
def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def contract_broken(code, err, seconds):
    """Why a run breaks the contract (None if it holds)."""
    lines = err.splitlines()
    if seconds > SECONDS_PER_RUN:
        return f"took {seconds:.1f} s"
    if code == 0:
        return None if not lines else f"exit 0 with stderr {err!r}"
    if len(lines) != 1:
        return f"exit {code} with {len(lines)} stderr lines: {err[:500]!r}"
    if code == 1:
        return None if ONE_LINE_EXIT_1.match(lines[0]) else f"exit 1 without a documented reason: {lines[0]!r}"
    if code == 2:
        return None if lines[0].startswith("deltalab: error: ") else f"exit 2 with {lines[0]!r}"
    return f"exit code {code!r}"


def check_mutant(name, text, directory):
    path = Path(directory) / f"mutant-{name}"
    path.write_text(text, encoding="utf-8")
    TALLY["tried"] += 1
    try:
        code, _, err, seconds = run_cli("solve", str(path))
    except Exception as exc:  # a traceback: the contract's worst failure
        raise AssertionError(f"{name}: solve raised {type(exc).__name__}: {exc}\n--- mutant ---\n{text}") from exc
    broken = contract_broken(code, err, seconds)
    assert broken is None, f"{name}: solve {broken}\n--- mutant ---\n{text}"
    # summary of every kind (equations included) refuses exactly what solve refuses
    try:
        s_code, _, s_err, s_seconds = run_cli("summary", str(path))
    except Exception as exc:
        raise AssertionError(f"{name}: summary raised {type(exc).__name__}: {exc}\n--- mutant ---\n{text}") from exc
    broken = contract_broken(s_code, s_err, s_seconds)
    assert broken is None, f"{name}: summary {broken}\n--- mutant ---\n{text}"
    if code == 2 and "solve --exact" in err:  # symbols: only solve needs numbers, summary shows shapes
        assert s_code == 0, f"{name}: summary of a symbolic problem: {s_err!r}"
    elif code == 2:
        assert (s_code, s_err) == (2, err), f"{name}: solve refused ({err!r}), summary gave {s_code} {s_err!r}\n{text}"
    else:
        assert s_code == 0, f"{name}: solve ran (exit {code}), summary refused: {s_err!r}\n{text}"
    TALLY["held"] += 1
    TALLY[f"exit {code}"] += 1


def test_the_writer_round_trips_every_example():
    for example in EXAMPLES:
        data = tomllib.loads(example.read_text(encoding="utf-8"))
        assert tomllib.loads(to_toml(data)) == data, example.name


@settings(max_examples=MUTANTS, deadline=None, derandomize=not os.environ.get("DELTALAB_MUTANTS"),
          suppress_health_check=list(HealthCheck), database=None)
@given(mutant=mutants())
def test_mutated_examples_keep_the_contract(mutant):
    name, text = mutant
    with tempfile.TemporaryDirectory() as directory:
        check_mutant(name, text, directory)


def teardown_module(module):
    if os.environ.get("DELTALAB_MUTANTS"):
        print(f"\nmutants: {TALLY}")
