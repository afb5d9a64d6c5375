"""The draw loop: resolve the template, solve, test the constraints, keep or draw again.

Deterministic: one NumPy generator seeded with --seed draws every number in a fixed order,
and solving is deterministic, so the same template and seed give the same variants.
Bounded: after ``max_tries`` draws for one variant the loop stops with the constraint that
rejected most of them.
"""
from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DeltalabError, NonFiniteResult, SpecError
from ..report.json_report import step_dict
from .numbers import RoundedNumbers
from .toml_text import dumps

KEY_SECTIONS = ("forward", "outputs", "errors", "deltas", "gradients", "parameters_after")


class GenerationError(DeltalabError):
    """The constraints could not be met in the allowed number of draws."""


@dataclass
class Quantity:
    """One asked quantity of a variant: where it is in ``solve --format json`` and its value."""

    section: str  # "loss" or a section of the JSON
    key: str | None
    symbol: str
    value: object  # a float or nested lists of floats, exactly as the JSON writes it
    step: int = 1  # the training step (1-based)

    @property
    def label(self) -> str:
        """As ``ask`` and the answers file write it: "gradients.W1", "steps.2.loss"."""
        prefix = "" if self.step == 1 else f"steps.{self.step}."
        return prefix + ("loss" if self.section == "loss" else f"{self.section}.{self.key}")

    @property
    def entries(self) -> list:
        """(index tuple, number) for every entry (index () for a single number)."""
        array = np.asarray(self.value, dtype=np.float64)
        return [(tuple(int(i) for i in index), float(array[index])) for index in np.ndindex(array.shape)]


@dataclass
class Variant:
    number: int  # 1-based
    data: dict  # the resolved problem
    text: str  # the problem file
    problem: object
    trace: object
    quantities: list
    tries: int
    planted: object = None  # planting.Planted with --plant-mistake

    @property
    def name(self) -> str:
        return f"variant-{self.number:02d}"


@dataclass
class Candidate:
    """One draw, solved: what constraints read."""

    problem: object
    trace: object
    ask: list  # [(step, section, key)], every step spelt out
    fingerprint: bytes
    generation: "Generation"
    template: object

    @property
    def derivations(self):
        return [s.derivation for s in self.trace.steps if s.derivation is not None]

    def template_error(self, where, message):
        return SpecError(f"{self.template.path}: {where}: {message}")


@dataclass
class Generation:
    template: object
    seed: int
    variants: list = field(default_factory=list)
    rejections: Counter = field(default_factory=Counter)  # constraint name -> draws rejected
    fingerprints: set = field(default_factory=set)
    original_fingerprint: bytes | None = None
    numbers: object = None  # how values are written (numbers.Numbers)
    mistake: object = None  # the planted mistake (check's library), with --plant-mistake

    @property
    def draws(self) -> int:
        return sum(v.tries for v in self.variants)


def fingerprint(trace) -> bytes:
    """The givens of step 1 (inputs, targets, parameters) and the learning rate, as bytes."""
    parts = [repr(trace.learning_rate).encode()]
    for node in trace.steps[0].derivation:
        if node.kind in ("input", "target", "parameter"):
            parts += [node.id.encode(), np.ascontiguousarray(node.value, dtype=np.float64).tobytes()]
    return b"\0".join(parts)


def default_ask(trace) -> list:
    """Without ``ask``: the loss, every delta, gradient and update of every training step (the
    outputs when there are no targets)."""
    asked = []
    for index, step in enumerate(trace.steps, start=1):
        if step.loss is None:
            asked += [(index, "outputs", v.key) for v in step.outputs]
            continue
        asked += ([(index, "loss", None)] + [(index, "deltas", v.key) for v in step.deltas]
                  + [(index, "gradients", k) for k in step.gradients]
                  + [(index, "parameters_after", k) for k in step.parameters_after])
    return asked


def spelt_out(template, trace, ask) -> list:
    """``ask`` with every step written: an entry without ``steps.N.`` is asked at every
    training step; the quantities of step 1 first, then step 2's, each in ``ask``'s order."""
    steps = len(trace.steps)
    out = []
    for step, section, key in ask:
        if step is not None and step > steps:
            label = f"steps.{step}." + ("loss" if section == "loss" else f"{section}.{key}")
            template.fail("generate.ask", f"{label}: the problem has {steps} training step{'s' if steps != 1 else ''} "
                                          "([training] steps)")
        out += [(s, section, key) for s in ([step] if step is not None else range(1, steps + 1))]
    return sorted(dict.fromkeys(out), key=lambda entry: entry[0])


def quantities(template, trace, ask) -> list:
    """The asked quantities of a solved variant; an unknown key names the section's keys."""
    out = []
    dicts = {}
    for index, section, key in ask:
        step = trace.steps[index - 1]
        data = dicts[index] = dicts.get(index) or step_dict(step)
        derivation = step.derivation
        prefix = "" if index == 1 else f"steps.{index}."
        if section == "loss":
            if data["loss"] is None:
                template.fail("generate.ask", f"\"{prefix}loss\": this problem has no targets, so no loss")
            node = next((n for n in derivation if n.kind == "loss"), None)
            out.append(Quantity("loss", None, node.symbol if node else "E", data["loss"], index))
            continue
        keys = list(data[section])
        if key not in data[section]:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            template.fail("generate.ask", f"{prefix}{section}.{key}: no such key{hint} (the {section} keys are "
                                          f"{', '.join(keys) or 'none'})")
        node = derivation.by_key(section, key)
        symbol = node.symbol if node is not None else key
        if section == "gradients" and node is None:
            symbol = f"∂E/∂{key}"
        if section == "parameters_after" and (node is None or node.symbol == key):
            symbol = f"{key} after the step"
        out.append(Quantity(section, key, symbol, data[section][key], index))
    return out


def _original_fingerprint(template):
    from ..examples import example_names, example_path
    from ..problem import load_problem
    from ..recorder import solve_problem

    name = template.settings.original
    if name is None:
        return None
    path = Path(template.path).parent / name
    if not path.is_file():
        if name not in example_names():
            template.fail("generate.original", f"{name!r} is neither a built-in example nor a file beside the template")
        path = example_path(name)
    return fingerprint(solve_problem(load_problem(path)))


PLANT_TRIES = 25  # draws that meet every constraint but host no planted mistake before giving up


def generate_variants(template, count, seed=0, mistake=None) -> Generation:
    """``count`` accepted variants of ``template`` drawn from ``seed``; with ``mistake`` (a
    mistake of check's library) each has it planted (:mod:`.planting`)."""
    from ..problem import parse_problem
    from ..problems.kinds import problem_kind
    from ..recorder import solve_problem
    from . import planting
    from .numbers import shown_decimals

    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 999:
        raise SpecError(f"--variants: expected 1 to 999, got {count!r}")
    rng = np.random.default_rng(seed)
    generation = Generation(template, seed, mistake=mistake)
    generation.original_fingerprint = _original_fingerprint(template)
    decimals = next((c for c in template.constraints if c.name == "decimals"), None)
    generation.numbers = (decimals.numbers(template.settings.tolerance) if decimals is not None
                          else RoundedNumbers(template.settings.display_decimals, template.settings.tolerance))
    ask = template.settings.ask
    shown = shown_decimals(generation.numbers)
    unplanted = 0  # draws that met the constraints but could not host the mistake
    for number in range(1, count + 1):
        rejected = Counter()
        for tries in range(1, template.settings.max_tries + 1):
            data = template.resolve(rng)
            data = {"title": f"{template.title} (variant {number})", **{k: v for k, v in data.items() if k != "title"}}
            text = dumps(data)
            problem = parse_problem(text, template.path)  # a mistake is in the template's field
            refusal = problem_kind(problem).refusal_for("generate", problem)
            if refusal:
                raise SpecError(f"{template.path}: {refusal}")
            try:
                trace = solve_problem(problem, differences=False)
            except NonFiniteResult:
                rejected["finite"] += 1  # these numbers make the error overflow
                continue
            asked = spelt_out(template, trace, ask) if ask is not None else default_ask(trace)
            candidate = Candidate(problem, trace, asked, fingerprint(trace), generation, template)
            failed = next((c.name for c in template.constraints if c.check(candidate) is not None), None)
            if failed is not None:
                rejected[failed] += 1
                continue
            trace = solve_problem(problem)  # the kept variant's gradients checked by finite differences
            if not all(check.passed for check in trace.checks):
                rejected["finite_differences"] += 1
                continue
            variant = Variant(number, data, text, problem, trace, quantities(template, trace, asked), tries)
            if mistake is not None:
                if not generation.variants and unplanted == 0 and not planting.has_place(trace, problem, mistake):
                    raise planting.not_applicable(template, mistake, variant, shown)
                variant.planted = planting.plant(variant, mistake, shown)
                if variant.planted is None:
                    rejected["plant_mistake"] += 1
                    unplanted += 1
                    if not generation.variants and unplanted >= PLANT_TRIES:
                        raise planting.not_applicable(template, mistake, variant, shown)
                    continue
            generation.fingerprints.add(candidate.fingerprint)
            generation.variants.append(variant)
            break
        else:
            generation.rejections.update(rejected)
            worst, n = rejected.most_common(1)[0]
            others = ", ".join(f"{k} {v}" for k, v in rejected.most_common()[1:])
            raise GenerationError(
                f"{template.path}: no variant {number} in {template.settings.max_tries} draws: the constraint "
                f"{worst} rejected {n} of them" + (f" (also: {others})" if others else "")
                + "; widen the draws or relax the constraint")
        generation.rejections.update(rejected)
    return generation


__all__ = ["Candidate", "Generation", "GenerationError", "Quantity", "Variant", "generate_variants"]
