"""Hostile and mistaken equation files: refused with one line naming the equation and column, fast, exit 2.

Nothing in an equation is ever executed: the parser walks Python's ``ast`` through a whitelist,
and size and nesting are checked before ``ast.parse``.
"""
import subprocess
import sys
import time

import pytest

from deltalab.errors import NonFiniteResult, SpecError
from deltalab.problem import load_problem, parse_problem
from deltalab.solve import solve_problem

TEMPLATE = """
[model]
type = "equations"
loss = "L"
[equations]
{equations}
[parameters]
w = 0.5
W = [[1.0, 2.0], [3.0, 4.0]]
[data]
x = 2.0
v = [1.0, 2.0, 3.0]
[training]
learning_rate = 0.1
"""


def problem_text(*lines):
    return TEMPLATE.format(equations="\n".join(lines))


def refuse(text, *fragments, exact=False):
    """Parse (and solve) ``text``: a SpecError containing every fragment, in well under a second."""
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        solve_problem(parse_problem(text, "hostile.toml"), exact=exact)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    assert elapsed < 0.5, elapsed
    return message


# ------------------------------------------------------------------ hostile input
@pytest.mark.parametrize("equation, fragment", [
    ("__import__('os')", "unknown function '__import__'"),
    ("__import__('os').system('echo pwned')", "attribute access is not allowed"),
    ("x.__class__", "attribute access is not allowed"),
    ("(lambda: 1)()", "only the listed functions can be called"),
    ("'a' * 3", "str constants are not allowed"),
    ("[w for w in x]", "comprehensions is not allowed"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("w if x else w", "if-else (use where) is not allowed"),
    ("x[0]", "subscripts like x[t] and h[t-1] exist only in [recurrence]"),
    ("(" * 60 + "w" + ")" * 60, "brackets nested more than 40 deep"),
    ("w" + "+w" * 300, "the expression is too large"),
    ("-" * 3000 + "w", "too large"),
    ("1e999 * w", "the number is not finite"),
    ("True * w", "bool constants are not allowed"),
    ("w\nimport os", "an equation is one line"),
])
def test_hostile_equations_are_refused(equation, fragment):
    refuse(problem_text(f"L = '''{equation}'''"), fragment, "hostile.toml: equations.L")


def test_a_10_megabyte_expression_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text(problem_text('L = "' + "w+" * 5_000_000 + 'w"'))
    start = time.perf_counter()
    with pytest.raises(SpecError, match="the largest is 1,000,000 bytes"):
        load_problem(path)
    assert time.perf_counter() - start < 0.5
    # a long equation inside a small file: its own limit
    refuse(problem_text('L = "' + "w+" * 3000 + 'w"'), "equations.L", "at most 4,000 are allowed")


def test_huge_powers_neither_hang_nor_crash():
    # a valid file whose loss overflows: a non-finite result (exit code 1), not a refusal
    with pytest.raises(NonFiniteResult, match="the loss L became inf"):
        solve_problem(parse_problem(problem_text('L = "2**10**10 * w"'), "hostile.toml"))
    with_symbol = problem_text('L = "2**10**10 * w + x"').replace("x = 2.0", 'x = "s"')
    refuse(with_symbol, "equations.L (column 2): exponent 10000000000 is too large for exact arithmetic", exact=True)


def run_cli(path):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", str(path)], capture_output=True,
                            text=True, timeout=30)
    return result, time.perf_counter() - start


def test_the_command_line_exits_2_with_one_line(tmp_path):
    cases = {
        "import.toml": (problem_text("L = \"__import__('os')\""), "unknown function '__import__'"),
        "attribute.toml": (problem_text("L = \"w.__class__.__bases__\""), "attribute access is not allowed"),
        "nesting.toml": (problem_text('L = "' + "(" * 1000 + "w" + ")" * 1000 + '"'), "nested more than"),
        "huge.toml": (problem_text('L = "' + "w*" * 5_000_000 + 'w"'), "the largest is 1,000,000 bytes"),
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result, elapsed = run_cli(path)
        assert result.returncode == 2, (name, result.stderr)
        assert fragment in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert elapsed < 3.0, (name, elapsed)  # process start included; the refusal itself is < 0.5 s above
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------ mistakes, with the column
def test_unknown_name_with_column_and_did_you_mean():
    refuse(problem_text('L = "w*xx + 1"'), "equations.L (column 3): unknown name 'xx'; did you mean 'x'?")


def test_use_before_definition_and_cycles():
    refuse(problem_text('L = "h + 1"', 'h = "w*x"'),
           "equations.L (column 1): 'h' is used before it is defined ([equations] is evaluated in order; move h above L)")
    refuse(problem_text('a = "b + 1"', 'b = "a*w"', 'L = "a"'), "equations.a (column 1): cycle: a reads b, which reads a")
    refuse(problem_text('L = "L*w"'), "equations.L (column 1): cycle: L reads itself")


def test_shape_clash_names_the_operation_column():
    refuse(problem_text('h = "W @ v"', 'L = "sum(h)"'),
           "equations.h (column 3): matmul: shapes (2, 2) and (3,) do not align")
    refuse(problem_text('h = "w + (v + W)"', 'L = "sum(h)"'),
           "equations.h (column 8): add: shapes (3,) and (2, 2) cannot be broadcast together")
    refuse(problem_text('L = "v * w"'), "the loss must be one number, it has shape (3,) (use sum(…))")


def test_recurrence_mistakes():
    base = """
[model]
type = "equations"
loss = "L"
[recurrence]
{body}
[initial]
{initial}
[parameters]
w = 0.5
[data]
x = [1.0, 2.0]
[training]
learning_rate = 0.1
"""
    refuse(base.format(body='h = "w*h[t-1] + x[t]"\nL = "h**2"', initial=""),
           "recurrence.h (column 3): h[t-1] at t = 1 needs the initial value h(0): add h = … to [initial]")
    refuse(base.format(body='h = "w*h + x[t]"\nL = "h**2"', initial="h = 0.0"),
           "recurrence.h (column 3): cycle: h reads itself (write h[t-1] for the previous step)")
    refuse(base.format(body='h = "w*h[t-2] + x[t]"\nL = "h**2"', initial="h = 0.0"),
           "recurrence.h (column 3): the subscript must be [t]")
    refuse(base.format(body='h = "w*x[t-1]"\nL = "h**2"', initial=""),
           "x[t-1]: only [recurrence] nodes have a previous step")
    refuse(base.format(body='h = "w*x[t]"\nL = "h**2"', initial="g = 1.0"),
           "initial.g: initial values are for [recurrence] nodes")


def test_bad_names_and_tables():
    refuse(problem_text('relu = "w"', 'L = "relu"'), "equations.relu: the name 'relu' is the name of a function")
    refuse(problem_text('w = "x"', 'L = "w"'), "equations.w: 'w' is already defined in [parameters]")
    refuse(problem_text('L = "t * w"'), "equations.L (column 1): the step index t exists only in [recurrence]")
    refuse(problem_text('L = "w"').replace('loss = "L"', 'loss = "l"'), "model.loss", "did you mean 'L'?")
    refuse(problem_text('L = "w"').replace("[data]", "[dataa]"), "dataa: unknown key; did you mean 'data'?")
