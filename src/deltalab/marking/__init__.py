"""Marking: grade a student's hand solution against the worked one (``deltalab check``, ``dl.check``).

Each answered quantity is judged against the true value and against the value its formula
gives from the student's own answers for its inputs (the error carried forward), so one
early slip costs once; a wrong value is explained by the library of mistakes
(:mod:`.mistakes`) when one of its rules reproduces it.  From Python::

    import deltalab as dl
    result = dl.check("problem.toml", "answers.toml")   # or an example name, a Problem
    result.score, result.max_score, result.first_wrong
    result                                              # a table in a notebook
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .answers import Answers, AnswersError, read_answers
from .grading import VERDICTS, Diagnosis, Quantity, grade


@dataclass
class CheckResult:
    """One submission, graded."""

    problem: str  # the problem's title
    source: str  # the answers file
    student: str | None
    quantities: list  # [Quantity], in derivation order
    follow_through: bool = True
    lecture: bool = False
    notes: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(q.points for q in self.quantities)

    @property
    def max_score(self) -> float:
        return sum(q.weight for q in self.quantities)

    @property
    def counts(self) -> dict:
        return {v: sum(q.verdict == v for q in self.quantities) for v in VERDICTS}

    @property
    def first_wrong(self):
        return next((q for q in self.quantities if q.verdict == "wrong"), None)

    @property
    def mistake_ids(self) -> list:
        ids = []
        for q in self.quantities:
            ids += [d.mistake for d in q.diagnoses if d.mistake not in ids]
        return ids

    @property
    def name(self) -> str:
        return self.student or Path(self.source).stem

    def to_dict(self) -> dict:
        from .report import to_dict

        return to_dict(self)

    def render(self, format="terminal") -> str:
        from .report import render

        return render(self, format)

    def _repr_html_(self):
        from .report import html_fragment

        return html_fragment(self)

    def _repr_markdown_(self):
        return self.render("markdown")

    def __str__(self):
        return self.render("text")


def check_weights(problem) -> dict:
    """{step: {(section, key): weight}} from the problem file's optional [check] table:
    ``loss = 2``, ``[check.gradients] W1 = 2``, ``[check.steps.2.deltas]``; every quantity
    listed is asked (unanswered ones are then missing)."""
    from ..problem import tomllib

    path = Path(getattr(problem, "path", "") or "")
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("check")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    if table is None:
        return {}
    from .answers import SECTIONS
    from ..errors import SpecError

    def number(value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SpecError(f"{path}: check.{where}: expected a non-negative number of points, got {value!r}")
        return float(value)

    def step_weights(t, prefix):
        out = {}
        for key, value in t.items():
            if key == "loss":
                out["loss", "loss"] = number(value, prefix + key)
            elif key in SECTIONS and isinstance(value, dict):
                for name, w in value.items():
                    out[key, name] = number(w, f"{prefix}{key}.{name}")
            elif key != "steps":
                raise SpecError(f"{path}: check.{prefix}{key}: unknown key; expected loss or one of "
                                f"{', '.join(SECTIONS)}")
        return out

    weights = {1: step_weights(table, "")}
    for name, t in (table.get("steps") or {}).items():
        if not (name.isdigit() and isinstance(t, dict)):
            raise SpecError(f"{path}: check.steps.{name}: expected [check.steps.N.section] tables")
        weights[int(name)] = step_weights(t, f"steps.{name}.")
    return weights


def load(problem):
    """A Problem from a Problem, a problem file or a built-in example's name."""
    from ..examples import example_names, example_path
    from ..problem import Problem, load_problem

    from ..errors import SpecError
    from ..problems.kinds import problem_kind

    if not isinstance(problem, Problem):
        if isinstance(problem, str) and problem in example_names() and not Path(problem).exists():
            problem = load_problem(example_path(problem))
        else:
            problem = load_problem(problem)
    refusal = problem_kind(problem).refusal_for("check", problem)
    if refusal:
        raise SpecError(f"{problem.path}: {refusal}")
    return problem


def check(problem, answers, tolerance=None, follow_through=True, diagnose=True, trace=None,
          weights=None) -> CheckResult:
    """Grade ``answers`` (a file, TOML text or a dict like the file's) for ``problem``.

    ``tolerance``: an absolute tolerance for every entry instead of the written decimals;
    ``follow_through``: count answers that are wrong only because of an earlier wrong answer
    (consistent) as right; ``trace``: the solved problem, when grading many submissions."""
    from ..problems.kinds import problem_kind
    from ..recorder import solve_problem

    problem = load(problem)
    kind = problem_kind(problem)
    symbolic = kind.solved_exactly(problem)
    if trace is None:
        trace = solve_problem(problem, exact=symbolic)
    if tolerance is not None and not (float(tolerance) >= 0):
        raise AnswersError(f"tolerance: expected a non-negative number, got {tolerance!r}")
    submission = read_answers(answers, tolerance, symbolic)
    if weights is None:
        weights = check_weights(problem)
    if symbolic:
        from .exact import grade_exact

        return CheckResult(trace.title, submission.source, submission.student,
                           grade_exact(trace, problem, submission, weights), follow_through)
    quantities = grade(trace, submission, follow_through, weights, diagnose, kind.grading_loss(problem))
    return CheckResult(trace.title, submission.source, submission.student, quantities, follow_through)


__all__ = ["Answers", "AnswersError", "CheckResult", "Diagnosis", "Quantity", "check", "read_answers"]

