"""The recorder: one step loop for every problem kind (:mod:`.loop`), the independent checks as
plug-ins (:mod:`.checks`) and their one tolerance policy (:mod:`.tolerance`)."""
from .loop import build_model, problem_forward, solve_problem

__all__ = ["build_model", "problem_forward", "solve_problem"]
