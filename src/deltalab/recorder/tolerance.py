"""The one tolerance policy of the gradient checks: how close each independent path must come.

Central differences carry O(ε²) truncation and cancellation error, so they pass per entry on
|a − n| ≤ atol + rtol·|n| (PyTorch's gradcheck rule); the other paths compute the same
quantities in float64 (PyTorch, the sum over paths) or exactly (SymPy), so a relative error
near rounding is expected of them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..gradcheck import FD_ATOL, FD_RTOL


@dataclass(frozen=True)
class Tolerances:
    differences_rtol: float = FD_RTOL  # central finite differences, per entry
    differences_atol: float = FD_ATOL
    torch: float = 1e-9  # PyTorch float64: relative error of each gradient
    chain_rule: float = 1e-10  # the sum over all paths against autodiff
    exact: float = 1e-12  # SymPy's exact values against the float64 solve (see equations.exact.close_error)


TOLERANCES = Tolerances()
