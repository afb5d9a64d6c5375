"""A worked solution as a format-neutral document: headings, text, equations and equation chains.

Every format renders this one list of blocks, so the formats cannot drift apart in content.
A :class:`Chain` is ``lhs = row₁ = row₂ …``; a row is terms joined by operators, and a term is
either notation (plain text, ``δ[1](1) · x[1](0)ᵀ``) or a recorded array.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._common import delta_groups, general_formula, number, parameter_names, time_groups


@dataclass
class Term:
    op: str  # "" for the first term of a row, else "+", "−", "·"
    content: object  # str (notation) or np.ndarray (a value)


@dataclass
class Chain:
    lhs: str
    rows: list  # [[Term]]


@dataclass
class Block:
    kind: str  # "title" | "heading" | "text" | "list" | "equations" | "chains" | "table"
    text: str = ""
    level: int = 2
    items: list = field(default_factory=list)  # lines, equations, [Chain] or table rows
    headers: list = field(default_factory=list)


def value_chain(label: str, array) -> Chain:
    return Chain(label, [[Term("", np.asarray(array, dtype=float))]])


def _lr(trace) -> str:
    return "—" if trace.learning_rate is None else f"{float(trace.learning_rate):g}"


def build(trace, decimals: int = 4) -> list:
    """The blocks of the worked solution of ``trace``, in reading order."""
    blocks = [Block("title", trace.title)]
    blocks.append(Block("heading", "Problem"))
    if trace.description:
        blocks.append(Block("list", items=list(trace.description)))
    equations = list(trace.equations) + ([trace.loss_formula] if trace.loss_formula else [])
    if equations:
        blocks.append(Block("equations", "Equations", items=equations))
    training = f" Learning rate: η = {_lr(trace)}." if trace.learning_rate is not None else ""
    blocks.append(Block("text", f"Loss function: {trace.loss_name}.{training}"))
    if trace.steps:
        first = trace.steps[0]
        blocks.append(Block("heading", "Parameters before", level=3))
        blocks.append(Block("chains", items=[value_chain(n, first.parameters_before[n])
                                             for n in first.parameters_before]))
    many = len(trace.steps) > 1
    for step in trace.steps:
        blocks += _step_blocks(trace, step, f"Step {step.index}: " if many else "", decimals, many)
    if trace.checks:
        blocks += _check_blocks(trace)
    return blocks


def _step_blocks(trace, step, prefix, decimals, many) -> list:
    blocks = []
    if many and step.index != trace.steps[0].index:
        blocks.append(Block("heading", f"{prefix}Parameters before"))
        blocks.append(Block("chains", items=[value_chain(n, step.parameters_before[n])
                                             for n in step.parameters_before]))
    # Forward pass
    blocks.append(Block("heading", f"{prefix}Forward pass"))
    groups, loose = time_groups(step)
    for group in groups:
        if group.step is not None:
            title = f"t = {group.step}" + (" (initial state)" if group.step == 0 else "")
            blocks.append(Block("heading", title, level=3))
        chains = [value_chain(v.key, v.array) for v in group.forward + group.outputs + group.targets]
        if group.error is not None:
            chains.append(value_chain(*group.error))
        if chains:
            blocks.append(Block("chains", items=chains))
    totals = [value_chain(name, value) for name, value in loose]
    if step.loss is not None:
        names = [name for name, _ in step.errors.items()]
        rows = [[Term("", " + ".join(names))]] if len(names) > 1 else []
        rows.append([Term("", np.asarray(step.loss, dtype=float))])
        totals.append(Chain("E", rows))
    if totals:
        blocks.append(Block("heading", "Total error", level=3))
        blocks.append(Block("chains", items=totals))
    if step.loss is None:
        blocks.append(Block("text", "No targets: forward pass only."))
        return blocks
    # Backward pass
    if step.deltas:
        blocks.append(Block("heading", f"{prefix}Backward pass"))
        for t, values in delta_groups(step):
            if t is not None:
                blocks.append(Block("heading", f"t = {t}", level=3))
            blocks.append(Block("chains", items=[value_chain(v.delta_symbol, v.array) for v in values]))
    # Gradients
    if step.gradients:
        blocks.append(Block("heading", f"{prefix}Gradients"))
        chains = []
        for name in parameter_names(step):
            if name not in step.gradients:
                continue
            contributions = sorted(step.contributions.get(name, []), key=lambda c: c.step)
            rows = []
            if contributions:
                general = general_formula(contributions)
                if general:
                    rows.append([Term("", f"Σ_t {general}")])
                rows.append([Term("" if i == 0 else "+", c.formula) for i, c in enumerate(contributions)])
                if len(contributions) > 1:
                    rows.append([Term("" if i == 0 else "+", np.asarray(c.array, dtype=float))
                                 for i, c in enumerate(contributions)])
            rows.append([Term("", np.asarray(step.gradients[name], dtype=float))])
            chains.append(Chain(f"∂E/∂{name}", rows))
        blocks.append(Block("chains", items=chains))
    # Update
    if step.parameters_after:
        blocks.append(Block("heading", f"{prefix}Update"))
        blocks.append(Block("text", f"SGD: θ ← θ − η · ∂E/∂θ with η = {_lr(trace)}."))
        chains = []
        for name in parameter_names(step):
            if name not in step.parameters_after:
                continue
            rows = []
            if name in step.parameters_before and name in step.gradients:
                rows.append([Term("", np.asarray(step.parameters_before[name], dtype=float)),
                             Term("−", _lr(trace)),
                             Term("·", np.asarray(step.gradients[name], dtype=float))])
            rows.append([Term("", np.asarray(step.parameters_after[name], dtype=float))])
            chains.append(Chain(f"{name} − η · ∂E/∂{name}", rows))
        blocks.append(Block("chains", items=chains))
    return blocks


def _check_blocks(trace) -> list:
    first = trace.steps[0].index if trace.steps else 1
    blocks = [Block("heading", "Check")]
    blocks.append(Block("text", f"Gradients of step {first} compared with independent methods."))
    rows = [[c.method, f"{float(c.max_relative_error):.2e}", f"{float(c.tolerance):.0e}",
             "✓" if c.passed else "✗"] for c in trace.checks]
    blocks.append(Block("table", items=rows, headers=["Method", "Max relative error", "Tolerance", "Passed"]))
    names = []
    for c in trace.checks:
        names += [n for n in c.per_parameter if n not in names]
    if names:
        per = [[n] + [f"{float(c.per_parameter[n]):.2e}" if n in c.per_parameter else "—" for c in trace.checks]
               for n in names]
        blocks.append(Block("table", items=per, headers=["Parameter"] + [c.method for c in trace.checks]))
    return blocks


__all__ = ["Block", "Chain", "Term", "build", "number"]
