"""The one step loop of every solve: build, record, update, check finite, derive -- ``steps`` times.

The recorder reads values straight from the engine -- forward tensors, deltas kept with
``retain_grad``, the per-step deltas a fused recurrent op records -- and never re-derives them;
reports only format the Trace.  What differs between problem kinds is the kind's
(:mod:`deltalab.problems`); the checks after the loop are plug-ins (:mod:`.checks`).
"""
from __future__ import annotations

from .. import optim
from ..autograd import no_grad
from ..problems.kinds import problem_kind
from ..trace import Trace, check_finite_step
from .checks import CHECKS, Solve


def build_model(problem):
    """The model of a problem (a layered or recurrent network, or an equations graph), with its
    parameters filled, drawn or given explicitly."""
    return problem_kind(problem).build(problem)


def problem_forward(problem, model):
    """One forward pass of ``model`` on the problem's data, as every solve step runs it: ``.output``,
    ``.target`` (None without targets), ``.mask`` (None, or 1 on the steps that have targets) and
    ``.loss`` (E with its graph, ready for ``backward``).  ``deltalab train file`` trains with it."""
    return problem_kind(problem).forward(problem, model)


def solve_problem(problem, check_torch=False, exact=False, differences=True) -> Trace:
    """Run ``problem.steps`` SGD steps and return the recorded worked solution.

    ``differences=False`` skips the finite-difference check (``generate`` solves many draws
    and checks only the variants it keeps).

    ``exact`` adds SymPy's exact values and derivatives (equations problems, and small mlp /
    rnn problems translated into equations; see :mod:`deltalab.equations.exact`).
    """
    kind = problem_kind(problem)
    model = kind.build(problem)
    kind.check_options(problem, model, check_torch, exact)
    header = kind.describe(problem, model)
    trace = Trace(problem.title, problem.model_type, header.lines, header.equations, header.loss_name,
                  header.loss_formula, problem.learning_rate, [], loss_symbol=header.loss_symbol)
    # no learning rate: the question asks for the gradients only, so no update is made or shown
    updates = model.trains and problem.learning_rate is not None
    optimizer = optim.SGD(list(model.parameters()), lr=problem.learning_rate) if updates else None
    first = {name: p.data.copy() for name, p in model.named_parameters()}
    try:
        for index in range(1, kind.steps(problem, model) + 1):
            step = kind.record(problem, model, index)
            if optimizer is not None:
                with no_grad():
                    optimizer.step()
                step.parameters_after = {name: p.data.copy() for name, p in model.named_parameters()}
                check_finite_step(problem.path, step, kind.loss_label(problem))
            step.derivation = kind.derive(problem, model, step)
            trace.steps.append(step)
    except Exception as exc:
        refusal = kind.refusal(problem, exc)
        if refusal is None:
            raise
        raise refusal from None
    solve = Solve(problem, kind, model, trace, first, check_torch, exact, differences)
    for check in CHECKS:
        if check.applies(solve):
            result = check.run(solve)
            if result is not None:
                trace.checks.append(result)
    return trace
