"""Grading one submission: each answered quantity against the true value and against the
value its formula gives from the student's own answers (error carried forward), verdicts,
diagnoses by the mistake library, and the score."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .answers import Answers, AnswersError
from .formulas import Evaluator, expand

VERDICTS = ("right", "consistent", "wrong", "missing")
MAX_DIAGNOSES = 4  # explanations per quantity


@dataclass
class Diagnosis:
    mistake: str
    explanation: str


@dataclass
class Quantity:
    section: str
    key: str
    step: int
    symbol: str
    node: str | None  # derivation node id
    answer: np.ndarray | None
    written: object
    true: np.ndarray
    implied: np.ndarray | None  # what the formula gives from the student's own inputs
    verdict: str
    diagnoses: list = field(default_factory=list)
    weight: float = 1.0
    points: float = 0.0
    tolerance: np.ndarray | None = None

    @property
    def where(self) -> str:
        prefix = "" if self.step == 1 else f"steps.{self.step}."
        return f"{prefix}{self.key}" if self.section == "loss" else f"{prefix}{self.section}.{self.key}"


def close(a, b, tolerance):
    """Every entry |a − b| below its tolerance (the written decimals' 10⁻ᵈ)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(b)):
        return False
    tolerance = np.asarray(tolerance)
    if tolerance.shape not in ((), a.shape):  # an answer written transposed: its coarsest entry
        tolerance = tolerance.max()
    return bool(np.all(np.abs(a - b) < tolerance))  # strict: 1 written for 2 is wrong


def quantity_nodes(derivation):
    """(section, key) -> node, for every gradable quantity (``loss`` for the total)."""
    out = {}
    for node in derivation:
        if node.kind == "loss":
            out["loss", "loss"] = node
        elif node.section in ("errors", "outputs", "forward", "deltas", "gradients", "parameters_after") \
                and node.formula is not None and node.key is not None:
            out.setdefault((node.section, node.key), node)
    return out


def bind(answers: Answers, trace):
    """{step: {node id: Answer}}, refusing unknown steps, keys and shapes (did-you-mean)."""
    import difflib

    bound = {}
    path = answers.source
    for answer in answers.entries:
        if answer.step > len(trace.steps):
            raise AnswersError(f"{path}: steps.{answer.step}: the problem has {len(trace.steps)} training "
                               f"step{'s' if len(trace.steps) != 1 else ''}")
        derivation = trace.steps[answer.step - 1].derivation
        nodes = quantity_nodes(derivation) if derivation is not None else {}
        if not nodes:
            raise AnswersError(f"{path}: this problem has no numeric solution to check against (unknown symbols "
                               "are solved only exactly, with solve --exact; check grades numbers)")
        node = nodes.get((answer.section, answer.key))
        if node is None:
            valid = [k for s, k in nodes if s == answer.section]
            if answer.section == "loss":
                raise AnswersError(f"{path}: {answer.where}: this problem has no loss to check")
            close_keys = difflib.get_close_matches(answer.key, valid, n=1)
            hint = f"did you mean {close_keys[0]!r}?" if close_keys else "valid keys: " + (
                ", ".join(valid) if valid else f"(none: the problem has no [{answer.section}])")
            raise AnswersError(f"{path}: {answer.where}: unknown key; {hint}")
        shape = np.shape(node.value)
        if answer.value.shape != shape:
            if answer.value.size == 1 and int(np.prod(shape)) == 1:
                answer.value = answer.value.reshape(shape)
                answer.tolerance = np.asarray(answer.tolerance).reshape(shape)
            elif not (len(shape) == 2 and answer.value.shape == shape[::-1]):  # transposed: judged, diagnosed
                raise AnswersError(f"{path}: {answer.where}: expected shape {_shape_text(shape)}, got "
                                   f"{_shape_text(answer.value.shape)}")
        bound.setdefault(answer.step, {})[node.id] = answer
    return bound


def _shape_text(shape):
    return "a single number" if shape == () else "×".join(map(str, shape))


def grade(trace, answers: Answers, follow_through=True, weights=None, diagnose=True, loss_name=""):
    """Every answered (and, with ``weights``, every asked) quantity with its verdict."""
    from .mistakes import Context, load_mistakes

    mistakes = load_mistakes() if diagnose else {}
    bound = bind(answers, trace)
    quantities = []
    carried = {}  # parameters_after of the previous step as the student's answers give them
    for index, step in enumerate(trace.steps, start=1):
        derivation = step.derivation
        given = bound.get(index, {})
        overrides = {id: a.value for id, a in given.items() if np.shape(a.value) == np.shape(derivation[id].value)}
        for name, value in carried.items():
            if f"parameters_before:{name}" in derivation.nodes:
                overrides.setdefault(f"parameters_before:{name}", value)
        values = derivation.replay(overrides)
        carried = {n.key: values[n.id] for n in derivation if n.kind == "update"}
        asked = (weights or {}).get(index, {})
        nodes = quantity_nodes(derivation)
        for (section, key), node in nodes.items():
            answer = given.get(node.id)
            weight = asked.get((section, key))
            if answer is None and weight is None:
                continue
            weight = 1.0 if weight is None else float(weight)
            if answer is None:
                quantities.append(Quantity(section, key, index, node.symbol, node.id, None, None, node.value, None,
                                           "missing", weight=weight))
                continue
            implied = None
            if node.formula is not None:
                try:
                    with np.errstate(all="ignore"):
                        implied = np.asarray(node.formula.evaluate(values), dtype=np.float64)
                except (ValueError, IndexError, TypeError):
                    implied = None
            if close(answer.value, node.value, answer.tolerance):
                verdict = "right"
            elif implied is not None and not close(implied, node.value, answer.tolerance) and close(
                    answer.value, implied, answer.tolerance):
                verdict = "consistent"
            else:
                verdict = "wrong"
            q = Quantity(section, key, index, node.symbol, node.id, answer.value, answer.written, node.value, implied,
                         verdict, weight=weight, tolerance=answer.tolerance)
            if verdict == "wrong" and mistakes:
                context = Context(node, expand(node.formula, derivation, set(given)), derivation, values, loss_name,
                                  set(given))
                q.diagnoses = diagnoses(context, answer, node.value, implied, mistakes)
            q.points = weight if verdict == "right" or (verdict == "consistent" and follow_through) else 0.0
            quantities.append(q)
    return quantities


def mistaken_values(mistake, ctx, evaluator=None):
    """(variant, value) for each way ``mistake`` applies at ``ctx`` that can be evaluated: what a
    student following that wrong rule would write (check diagnoses with it, generate plants it)."""
    evaluator = evaluator or Evaluator(ctx.values)
    for variant in mistake.variants(ctx):
        evaluate = evaluator if variant.values is None else Evaluator(variant.values)
        try:
            with np.errstate(all="ignore"):
                value = evaluate(variant.formula)
        except (ValueError, IndexError, TypeError, KeyError):
            continue
        yield variant, value


def diagnoses(ctx, answer, true, implied, mistakes):
    """Every rule that reproduces the wrong answer (not the true or the implied value)."""
    found = []
    evaluator = Evaluator(ctx.values)
    seen = set()
    for mistake in mistakes.values():
        for variant, value in mistaken_values(mistake, ctx, evaluator):
            if value.shape != answer.value.shape or not close(answer.value, value, answer.tolerance):
                continue
            if value.shape == np.shape(true) and close(value, true, answer.tolerance):
                continue
            if implied is not None and value.shape == implied.shape and close(value, implied, answer.tolerance):
                continue
            if (mistake.id, variant.explanation) in seen:
                continue
            seen.add((mistake.id, variant.explanation))
            found.append(Diagnosis(mistake.id, variant.explanation))
            break  # one explanation per rule is enough
        if len(found) >= MAX_DIAGNOSES:
            break
    return found


__all__ = ["Diagnosis", "Quantity", "VERDICTS", "bind", "close", "grade", "mistaken_values", "quantity_nodes"]
