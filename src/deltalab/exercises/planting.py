"""Planted mistakes ("find the error" exercises): a variant's worked solution with one mistake
from ``deltalab check``'s library at a stated place, every quantity after it carried forward
from the wrong value -- as a student who made that mistake and then worked on correctly
would have it.

A rule of the library (:mod:`deltalab.marking.mistakes`) rewrites a quantity's formula the
wrong way; planting evaluates that rewritten formula on the true values before it, takes the
result as the quantity's value and recomputes everything after it (later training steps
start from the wrong updated parameters).  A place is kept only when

- the wrong value differs from the right one in the decimals the key shows, and
- ``deltalab check`` of the variant and the planted solution (written as an answers file)
  finds exactly one wrong quantity, the planted one, and names exactly the planted mistake
  (the others are right, or consistent with it).

Places are tried in reading order starting at a different quantity for each variant (the
variant's number picks it), so the variants of one sheet hide their mistakes in different
places.  A draw without any such place is rejected like a draw that breaks a constraint
(``plant_mistake`` in the stress report).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from ..errors import SpecError
from .toml_text import Written

MIN_DECIMALS = 6  # decimals written in a planted solution file (more where a value needs them)


@dataclass
class Planted:
    """One planted mistake: where it is, the wrong formula, and the whole mistaken solution."""

    mistake: object  # deltalab.marking.mistakes.Mistake
    step: int  # training step of the mistake (1-based)
    node: object  # the derivation node that holds it
    formula: object  # the formula as the mistake has it (an expression tree)
    explanation: str  # check's sentence for it
    values: list  # per training step: node id -> value in the mistaken solution
    text: str = ""  # the mistaken solution as an answers file

    @property
    def id(self) -> str:
        return self.mistake.id

    @property
    def wrong(self):
        return self.values[self.step - 1][self.node.id]

    def rewritten_parts(self, derivation) -> list:
        """[(node, formula, value)]: the quantities inside the planted formula that the mistake
        rewrote (a BPTT contribution written out in a gradient's sum), with their wrong values."""
        from ..marking.formulas import Evaluator, Inlined, children

        found = []
        evaluate = Evaluator(self.values[self.step - 1])

        def walk(expr):
            if isinstance(expr, Inlined) and expr.node in derivation.nodes:
                original = derivation[expr.node].formula
                if original is not None and expr.formula.text() != original.text():
                    inner = len(found)
                    walk(expr.formula)
                    if len(found) == inner:  # the deepest rewritten quantity is where the mistake is
                        found.append((derivation[expr.node], expr.formula, evaluate(expr.formula)))
                return
            for child in children(expr):
                walk(child)

        walk(self.formula)
        return found

    @property
    def where(self) -> str:
        """As an answers file names the quantity: "deltas.z[1]", "steps.2.loss"."""
        prefix = "" if self.step == 1 else f"steps.{self.step}."
        return prefix + ("loss" if self.node.kind == "loss" else f"{self.node.section}.{self.node.key}")


def mistake_named(name):
    """The library's mistake ``name``; an unknown name is refused with a did-you-mean and the list."""
    from ..marking.mistakes import IDS, load_mistakes

    if name not in IDS:
        close = difflib.get_close_matches(str(name), IDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SpecError(f"--plant-mistake: unknown mistake {name!r}; {hint}(the mistakes: {', '.join(IDS)})")
    return load_mistakes()[name]


def _loss_name(problem):
    from ..problems.kinds import problem_kind

    return problem_kind(problem).grading_loss(problem)


def _contexts(trace, problem):
    """(step, node, values, context) for every quantity ``check`` grades, as check sees it
    when every quantity is answered (so a rule rewrites the quantity's own formula)."""
    from ..marking.formulas import expand
    from ..marking.grading import quantity_nodes
    from ..marking.mistakes import Context

    for index, step in enumerate(trace.steps, start=1):
        derivation = step.derivation
        if derivation is None:
            continue
        nodes = quantity_nodes(derivation)
        answered = {n.id for n in nodes.values()}
        values = _as_checked(derivation)
        for node in nodes.values():
            yield index, node, values, Context(node, expand(node.formula, derivation, answered), derivation, values,
                                               _loss_name(problem), answered)


def _places(trace, problem, mistake, shown_decimals):
    """[(step, node, [(formula, explanation, value)])]: every quantity where ``mistake``'s
    rule gives a visibly different value of the right shape, in reading order."""
    from ..marking.formulas import Evaluator
    from ..marking.grading import mistaken_values

    visible = 10.0 ** -shown_decimals
    places, evaluators = [], {}
    for index, node, values, context in _contexts(trace, problem):
        evaluator = evaluators.setdefault(index, Evaluator(values))
        true = np.asarray(node.value, dtype=np.float64)
        found = []
        for variant, value in mistaken_values(mistake, context, evaluator):
            if value.shape != true.shape or not np.all(np.isfinite(value)):
                continue
            if np.max(np.abs(value - true), initial=0.0) >= visible:
                found.append((variant.formula, variant.explanation, value))
        if found:
            places.append((index, node, found))
    return places


def has_place(trace, problem, mistake) -> bool:
    """Whether ``mistake``'s rule rewrites any formula of the problem at all (whatever the numbers)."""
    return any(next(iter(mistake.variants(context)), None) is not None
               for _, _, _, context in _contexts(trace, problem))


def _answered(derivation) -> list:
    """The ids of the quantities ``check`` grades, in reading order."""
    from ..marking.grading import quantity_nodes

    return [n.id for n in quantity_nodes(derivation).values()]


def _as_checked(derivation) -> dict:
    """The step's values as ``check`` computes them from an answers file holding every true
    value: the answered quantities as recorded, the rest (local derivatives, BPTT
    contributions) recomputed from them."""
    return derivation.replay({id: derivation[id].value for id in _answered(derivation)})


def carried_values(trace, step_index, node_id, value) -> list:
    """Every step's values with ``node_id`` of step ``step_index`` set to ``value`` and every
    quantity after it recomputed (later steps start from the updated parameters so
    computed), as ``check`` carries a student's numbers forward.  Quantities before it keep
    their recorded values exactly."""
    out, carried = [], {}
    for index, step in enumerate(trace.steps, start=1):
        derivation = step.derivation
        overrides = {f"parameters_before:{name}": v for name, v in carried.items()
                     if f"parameters_before:{name}" in derivation.nodes}
        if index < step_index:
            overrides.update({id: derivation[id].value for id in _answered(derivation)})
        elif index == step_index:
            answered = _answered(derivation)
            overrides.update({id: derivation[id].value for id in answered[:answered.index(node_id)]})
            overrides[node_id] = value
        values = derivation.replay(overrides)
        carried = {n.key: values[n.id] for n in derivation if n.kind == "update"}
        out.append(values)
    return out


def written_number(value) -> Written:
    """A number with every digit it needs to read back as the same float (so ``check``
    recomputes exactly the values written), and at least MIN_DECIMALS decimals: ``check``
    reads its tolerance from the decimals written, so a wrong 1 written as "1" would pass
    for 1.5."""
    v = float(value)
    v = 0.0 if v == 0 else v
    return Written(np.format_float_positional(v, unique=True, trim="k", min_digits=MIN_DECIMALS))


def _nested(value):
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return written_number(a)
    return [_nested(row) for row in a]


def solution_text(trace, values, name, mistake_id) -> str:
    """The mistaken solution as an answers file: every quantity ``check`` grades, every step."""
    from ..marking.grading import quantity_nodes
    from .documents import answers_text

    entries = []
    for index, (step, step_values) in enumerate(zip(trace.steps, values), start=1):
        for (section, key), node in quantity_nodes(step.derivation).items():
            entries.append((index, section, None if section == "loss" else key, _nested(step_values[node.id])))
    return (f"# the worked solution of {name}.toml with the mistake {mistake_id} planted (deltalab generate "
            f"--plant-mistake): `deltalab check {name}.toml planted/{name}.toml` names it\n" + answers_text(entries))


def plant(variant, mistake, shown_decimals=4, name=None):
    """``mistake`` (a library Mistake) planted in ``variant`` (solved), or None when no place
    of this variant hosts it so that ``check`` names it alone."""
    from ..marking import check as grade

    trace, problem = variant.trace, variant.problem
    name = name or variant.name
    places = _places(trace, problem, mistake, shown_decimals)
    if not places:
        return None
    start = (variant.number - 1) % len(places)
    for step, node, found in places[start:] + places[:start]:
        for formula, explanation, value in found:
            values = carried_values(trace, step, node.id, value)
            text = solution_text(trace, values, name, mistake.id)
            result = grade(problem, text, trace=trace, weights={})
            wrong = [q for q in result.quantities if q.verdict not in ("right", "consistent")]
            if (len(wrong) == 1 and wrong[0].node == node.id and wrong[0].step == step
                    and [d.mistake for d in wrong[0].diagnoses] == [mistake.id]):
                return Planted(mistake, step, node, formula, wrong[0].diagnoses[0].explanation, values, text)
    return None


def plantable(variant, shown_decimals=4) -> list:
    """The ids of every mistake that can be planted in ``variant``."""
    from ..marking.mistakes import load_mistakes

    return [id for id, m in load_mistakes().items() if plant(variant, m, shown_decimals) is not None]


def not_applicable(template, mistake, variant, shown_decimals=4) -> SpecError:
    """The refusal for a mistake no draw of ``template`` can host, naming those that can."""
    others = plantable(variant, shown_decimals)
    return SpecError(f"--plant-mistake: the mistake {mistake.id} ({mistake.summary}) does not apply to "
                     f"{template.path}" + (f"; mistakes that do: {', '.join(others)}" if others
                                           else "; no mistake of the library applies to it"))


__all__ = ["MIN_DECIMALS", "Planted", "carried_values", "has_place", "mistake_named", "not_applicable", "plant",
           "plantable", "solution_text", "written_number"]
