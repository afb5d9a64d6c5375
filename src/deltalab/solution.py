"""``dl.solve(...)``: a worked solution as a Python object that shows itself in a notebook.

The notebook representations are static (HTML with its own scoped style, Markdown with
``$$`` maths), so a saved notebook shows the solution on GitHub, nbviewer and Colab too.
"""
from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

_SCOPE = "deltalab-solution"


def load_example(name):
    """The built-in problem ``name`` (see ``deltalab examples``) as a Problem."""
    from .examples import example_path
    from .problem import load_problem

    return load_problem(example_path(name))


def _problem(source):
    from .problem import Problem, load_problem

    if isinstance(source, Problem):
        return source
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        return load_problem(path)
    return load_example(str(source))


class Solution:
    """The worked solution of one problem: ``.trace`` (what was recorded), ``.derivation``
    (step 1's formulas), ``render(fmt)``, ``to_dict()`` (the JSON contract)."""

    def __init__(self, problem, trace):
        self.problem, self.trace = problem, trace

    @property
    def derivation(self):
        return self.trace.steps[0].derivation if self.trace.steps else None

    @property
    def passed(self) -> bool:
        """Whether every independent check of the gradients passed."""
        return all(c.passed for c in self.trace.checks)

    def render(self, fmt="terminal", decimals=4) -> str:
        from . import report

        return report.render(self.trace, fmt, decimals)

    def to_dict(self) -> dict:
        from .report.json_report import to_dict

        return to_dict(self.trace)

    @cached_property
    def _text(self):
        from .report.terminal import render

        return render(self.trace)

    def __repr__(self):
        return self._text

    def _repr_markdown_(self):
        from . import report

        return report.render(self.trace, "markdown", maths=True)  # $$ … $$ maths, which notebooks typeset

    def _repr_html_(self):
        page = self.render("html")
        style = re.search(r"<style>(.*?)</style>", page, re.S)
        body = re.search(r"<body>(.*)</body>", page, re.S)
        css = scoped_css(style.group(1) if style else "", f".{_SCOPE}")
        return f'<div class="{_SCOPE}"><style>{css}</style>{body.group(1) if body else page}</div>'


def scoped_css(css: str, scope: str) -> str:
    """Every rule of ``css`` limited to elements inside ``scope`` (``body`` becomes the scope
    itself), so a solution's page style does not restyle the notebook around it; rules inside
    ``@media`` are scoped too, other at-rules (``@page``) are kept as they are."""
    out, pos = [], 0
    while True:
        start = css.find("{", pos)
        if start < 0:
            break
        selectors = css[pos:start].strip()
        depth, end = 1, start + 1
        while end < len(css) and depth:
            depth += {"{": 1, "}": -1}.get(css[end], 0)
            end += 1
        inner = css[start + 1 : end - 1]
        if selectors.startswith(("@media", "@supports")):
            out.append(f"{selectors} {{\n{scoped_css(inner, scope)}\n}}")
        elif selectors.startswith("@"):
            out.append(f"{selectors} {{{inner}}}")
        else:
            scoped = [scope if sel.strip() in ("body", "html") else f"{scope} {sel.strip()}"
                      for sel in selectors.split(",")]
            out.append(f"{', '.join(scoped)} {{{inner}}}")
        pos = end
    return "\n".join(out)


def solve(problem=None, *, example=None, check_torch=False, exact=False) -> Solution:
    """Solve a problem -- a Problem, a problem file's path or a built-in example's name, or
    ``example=NAME`` (always the built-in one, even where a file of that name exists) -- and
    return its worked solution (it shows itself in a notebook; ``print`` gives the text)."""
    from .recorder import solve_problem

    if (problem is None) == (example is None):
        raise TypeError("solve() takes a problem (a file, a Problem or an example's name) or example=NAME, "
                        "not both or neither")
    problem = load_example(example) if example is not None else _problem(problem)
    trace = solve_problem(problem, check_torch=check_torch, exact=exact)
    trace.statement = problem.description  # the problem as its author states it, shown first
    return Solution(problem, trace)


__all__ = ["Solution", "load_example", "scoped_css", "solve"]
