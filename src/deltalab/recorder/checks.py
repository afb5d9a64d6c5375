"""The independent checks of a solve, as plug-ins the recorder runs after the step loop, in this
order: central differences (through :mod:`deltalab.gradcheck`), the PyTorch re-run
(``--check-torch``), the chain rule (sum over paths, equations problems) and exact mode
(``--exact``).  Each says when it applies and appends its :class:`~deltalab.trace.Check`;
every tolerance comes from the one policy, :data:`TOLERANCES`.

The tolerance policy: central differences carry O(ε²) truncation and cancellation error, so
they pass per entry on |a − n| ≤ atol + rtol·|n| (PyTorch's gradcheck rule); the other paths
compute the same quantities in float64 (PyTorch, the sum over paths) or exactly (SymPy), so a
relative error near rounding is expected of them.
"""
from __future__ import annotations

import numpy as np

from ..errors import DeltalabError
from ..gradcheck import FD_ATOL, FD_RTOL, compare_with_differences, relative_error, sampled_entries
from ..records import dataclass
from ..trace import Check


@dataclass(frozen=True)
class Tolerances:
    differences_rtol: float = FD_RTOL  # central finite differences, per entry
    differences_atol: float = FD_ATOL
    torch: float = 1e-9  # PyTorch float64: relative error of each gradient
    chain_rule: float = 1e-10  # the sum over all paths against autodiff
    exact: float = 1e-12  # SymPy's exact values against the float64 solve (see equations.exact.close_error)


TOLERANCES = Tolerances()


@dataclass
class Solve:
    """What a check sees of one solve."""

    problem: object
    kind: object  # the problem's ProblemKind
    model: object
    trace: object
    first: dict  # the first step's parameters (name -> array)
    check_torch: bool = False
    exact: bool = False
    differences: bool = True

    @property
    def trained(self) -> bool:
        return self.model.trains and bool(self.trace.steps)


class FiniteDifferences:
    """Central differences of E for every parameter entry (a fixed sample of them for big nets)."""

    def applies(self, solve):
        return solve.trained and solve.differences

    def run(self, solve, tolerances=TOLERANCES):
        step = solve.trace.steps[0]
        arrays, loss, max_entries = solve.kind.difference_probe(solve.problem, solve.model, solve.first, step)
        chosen = sampled_entries({name: np.size(array) for name, array in arrays.items() if name in step.gradients},
                                 max_entries)
        comparisons = {}
        centre = loss() if any(len(entries) for entries in chosen.values()) else None  # E, once for every array
        for name, entries in chosen.items():
            array = arrays[name]
            indices = [np.unravel_index(i, array.shape) for i in entries]
            comparisons[name] = compare_with_differences(loss, array, indices, step.gradients[name].reshape(-1)[entries],
                                                         rtol=tolerances.differences_rtol,
                                                         atol=tolerances.differences_atol, centre=centre)
        return Check.from_differences(comparisons, tolerances.differences_rtol, tolerances.differences_atol)


class TorchRerun:
    """``--check-torch``: the first step's gradients from PyTorch float64 on the same parameters,
    computed by the kind's own torch code (written independently of the engine)."""

    def applies(self, solve):
        return solve.check_torch and solve.trained and solve.differences

    def run(self, solve, tolerances=TOLERANCES):
        try:
            import torch
        except ImportError:
            raise DeltalabError("--check-torch needs PyTorch: pip install 'deltalab[torch]'") from None
        gradients = solve.trace.steps[0].gradients
        p = {name: torch.tensor(value, requires_grad=True) for name, value in solve.first.items()}
        solve.kind.torch_loss(solve.problem, torch, p).backward()
        per_parameter = {name: relative_error(gradients[name], tensor.grad.numpy()) for name, tensor in p.items()}
        return Check("PyTorch float64", max(per_parameter.values(), default=0.0), per_parameter, tolerances.torch)


class ChainRule:
    """The sum over every path from the loss to each parameter against the engine's gradient
    (problems whose steps record their paths: equations)."""

    def applies(self, solve):
        return solve.kind.records_paths and solve.trained and solve.differences

    def run(self, solve, tolerances=TOLERANCES):
        step = solve.trace.steps[0]
        per_parameter = {name: relative_error(step.paths[name].value, step.gradients[name]) for name in step.paths}
        return Check("chain rule: sum over paths vs autodiff", max(per_parameter.values(), default=0.0), per_parameter,
                     tolerances.chain_rule)


class ExactMode:
    """``--exact``: SymPy's exact values and derivatives of step 1, checked against the float64 solve."""

    def applies(self, solve):
        return solve.exact

    def run(self, solve, tolerances=TOLERANCES):
        solve.kind.exact(solve.problem, solve.model, solve.trace, solve.first, tolerances.exact)
        return None  # the kind appends its check itself (it knows how to name the quantities)


CHECKS = (FiniteDifferences(), TorchRerun(), ChainRule(), ExactMode())
