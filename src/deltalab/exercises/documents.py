"""The files ``generate`` writes: exercise sheets, keys, answers files, the Moodle quiz and
the stress report -- every one built as text from the solved variants, nothing recomputed."""
from __future__ import annotations

import html
import json
import re

import numpy as np

from .. import report
from ..report.latex import PREAMBLE as LATEX_PREAMBLE
from ..report.latex import text as latex_text
from .toml_text import dumps
from .writing import bracket_text, given_text, html_array, latex_array

GIVEN_KINDS = ("input", "target", "parameter")


def givens(variant) -> list:
    """(symbol, value) of what a student is given: inputs, targets, initial states, parameters."""
    nodes = [n for n in variant.trace.steps[0].derivation if n.kind in GIVEN_KINDS]
    order = {"input": 0, "target": 1, "parameter": 2}
    return [(n.symbol, n.value) for n in sorted(nodes, key=lambda n: order[n.kind])]


def _problem_lines(variant) -> list:
    trace = variant.trace
    return list(trace.description) + [f"loss: {trace.loss_formula}"] if trace.steps[0].loss is not None \
        else list(trace.description)


def _rate(variant):
    rate = variant.trace.learning_rate
    return None if rate is None else given_text(rate)


def _question(q) -> str:
    if q.section == "loss":
        text = "the loss " + q.symbol
    elif q.section == "parameters_after":
        text = f"{q.symbol} ({q.key} after the SGD step)"
    else:
        text = q.symbol
    return text + _step_note(q)


def _step_note(q) -> str:
    """Which training step a quantity belongs to, for problems of more than one step."""
    return f" in training step {q.step}" if q.step > 1 else ""


# ------------------------------------------------------------------ markdown
def sheet_markdown(generation, answers=False) -> str:
    numbers = generation.numbers
    title = generation.template.title
    out = [f"# {title}: {'key' if answers else 'exercise sheet'}", ""]
    hint = _hint(generation)
    if hint:
        out += [hint, ""]
    for v in generation.variants:
        out += [f"## Variant {v.number}", ""]
        out += _markdown_question(v)
        if v.planted is not None:
            out += _markdown_planted(v, generation, answers)
        if answers:
            out += ["### Answers", ""]
            out += [f"{i}. {_question(q)} = {bracket_text(q.value, numbers.text)}" for i, q in enumerate(v.quantities, 1)]
            out.append("")
            if v.planted is None:
                out += ["### Worked solution", ""]
                worked = report.render(v.trace, "markdown", decimals=_decimals(generation))
                out += [re.sub(r"^(#+)", r"##\1", line) for line in worked.splitlines()]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def _markdown_question(v) -> list:
    out = []
    if v.problem.description:
        out += [v.problem.description.strip(), ""]
    out += [f"- {line}" for line in _problem_lines(v)]
    if v.trace.equations:
        out += ["", "Equations:", ""] + [f"    {e}" for e in v.trace.equations]
    out += ["", "Given:", ""]
    out += [f"- {symbol} = {bracket_text(value, given_text)}" for symbol, value in givens(v)]
    if _rate(v) is not None:
        out.append(f"- learning rate η = {_rate(v)}")
    out += ["", "Compute:", ""]
    out += [f"{i}. {_question(q)}" for i, q in enumerate(v.quantities, 1)]
    out.append("")
    return out


def _hint(generation) -> str:
    from .numbers import DecimalNumbers, FractionNumbers

    numbers = generation.numbers
    if isinstance(numbers, DecimalNumbers):
        return f"Every answer has at most {numbers.decimals} decimals."
    if isinstance(numbers, FractionNumbers):
        return f"Every answer is a fraction with denominator at most {numbers.max_denominator}."
    return f"Give answers to {numbers.decimals} decimals."


def _decimals(generation):
    from .numbers import shown_decimals

    return shown_decimals(generation.numbers)


# ------------------------------------------------------------------ LaTeX


def _latex_symbol(symbol: str) -> str:
    from ..derivation.expressions import latex_symbol

    return latex_symbol(symbol.replace("′", "'"))


def sheet_latex(generation, answers=False) -> str:
    numbers = generation.numbers
    title = generation.template.title
    out = [LATEX_PREAMBLE, r"\begin{document}", r"\section*{" + latex_text(f"{title}: {'key' if answers else 'exercise sheet'}") + "}"]
    hint = _hint(generation)
    if hint:
        out.append(latex_text(hint))
    for v in generation.variants:
        if v.number > 1:
            out.append(r"\clearpage" if answers else r"\bigskip")
        out.append(r"\subsection*{Variant " + str(v.number) + "}")
        if v.problem.description:
            out.append(latex_text(v.problem.description.strip()))
        out.append(r"\begin{itemize}")
        out += [r"\item " + latex_text(line) for line in _problem_lines(v)]
        out.append(r"\end{itemize}")
        if v.trace.equations:
            out.append(r"\begin{quote}")
            out.append(r" \\ ".join(latex_text(e) for e in v.trace.equations))
            out.append(r"\end{quote}")
        out.append("Given:")
        rows = [f"{_latex_symbol(s)} &= {latex_array(value, given_text)}" for s, value in givens(v)]
        if _rate(v) is not None:
            rows.append(rf"\eta &= {_rate(v).replace('−', '-')}")
        out += [r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]
        out.append("Compute:")
        out.append(r"\begin{enumerate}")
        out += [r"\item " + (r"the loss " if q.section == "loss" else "") + f"${_latex_symbol(q.symbol)}$"
                + latex_text(_step_note(q)) for q in v.quantities]
        out.append(r"\end{enumerate}")
        if v.planted is not None:
            out += _latex_planted(v, generation, answers)
        if answers:
            out.append(r"\subsubsection*{Answers}")
            rows = [f"{_latex_symbol(q.symbol)} &= {latex_array(q.value, numbers.text)}"
                    + (r" && \text{" + latex_text(f"(step {q.step})") + "}" if q.step > 1 else "") for q in v.quantities]
            out += [r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]
            if v.planted is None:
                out.append(r"\subsubsection*{Worked solution}")
                out.append(_latex_body(report.render(v.trace, "latex", decimals=_decimals(generation))))
    out.append(r"\end{document}")
    document = "\n".join(out) + "\n"
    return document.replace(LATEX_PREAMBLE, LATEX_PREAMBLE + "\\setcounter{MaxMatrixCols}{"
                            + str(widest_matrix(document)) + "}\n", 1)


_MATRIX_TOKEN = re.compile(r"\\begin\{[pbvBV]?matrix\}|\\end\{[pbvBV]?matrix\}|\\\\|&")


def widest_matrix(document: str) -> int:
    """The most columns of any matrix in ``document`` (at least amsmath's 10).  pdflatex spends
    time on every column a matrix may have, so the worked solution's allowance of 200 made a
    key of two variants take seconds; the documents allow just what they use."""
    widest, stack = 10, []  # stack: columns of the current row of each open matrix
    for token in _MATRIX_TOKEN.findall(document):
        if token.startswith("\\begin"):
            stack.append(1)
        elif token.startswith("\\end"):
            if stack:
                widest = max(widest, stack.pop())
        elif stack and token == "&":
            stack[-1] += 1
            widest = max(widest, stack[-1])
        elif stack:  # a new row
            stack[-1] = 1
    return widest


def _latex_body(document: str) -> str:
    """The worked solution's LaTeX document as part of the key: its body, headings one level
    down, its title dropped (the variant's heading stands for it)."""
    body = document.split(r"\begin{document}", 1)[1].rsplit(r"\end{document}", 1)[0]
    body = re.sub(r"^\\section\*\{.*\}$", "", body, count=1, flags=re.M)
    body = body.replace(r"\subsubsection*{", r"\paragraph*{").replace(r"\subsection*{", r"\subsubsection*{")
    return body.strip()


# ------------------------------------------------------------------ HTML
HTML_STYLE = """body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 70rem;
       margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2rem; }
table.m { display: inline-table; border-collapse: separate; border-spacing: .6rem .05rem;
          border-left: 2px solid #333; border-right: 2px solid #333; border-radius: 4px;
          vertical-align: middle; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9rem; }
table.m td { text-align: right; padding: 0; }
.slice { display: inline-block; text-align: center; margin-right: .6rem; }
.slice small { display: block; color: #666; }
.eq { font-family: "Cambria Math", "STIX Two Math", Georgia, serif; margin: .2rem 0 .2rem 1rem; }
.worked { border-left: 3px solid #ddd; padding-left: 1rem; }
"""


def sheet_html(generation, answers=False) -> str:
    numbers = generation.numbers
    title = generation.template.title
    heading = f"{title}: {'key' if answers else 'exercise sheet'}"
    body = [f"<h1>{html.escape(heading)}</h1>"]
    hint = _hint(generation)
    if hint:
        body.append(f"<p>{html.escape(hint)}</p>")
    styles = []
    for v in generation.variants:
        body.append(f'<h2 id="{v.name}">Variant {v.number}</h2>')
        body.append(html_question(v))
        if v.planted is not None:
            body.append(_html_planted(v, generation, answers))
        if answers:
            body.append("<h3>Answers</h3><ol>" + "".join(
                f"<li>{html.escape(_question(q))} = {html_array(q.value, numbers.text)}</li>" for q in v.quantities)
                + "</ol>")
        if answers and v.planted is None:
            # no picture per variant: every variant draws the same network
            page = report.render(v.trace, "html", decimals=_decimals(generation), figure=False)
            style = re.search(r"<style>(.*?)</style>", page, re.S)
            if style and style.group(1) not in styles:
                styles.append(style.group(1))
            inner = re.search(r"<body>(.*)</body>", page, re.S).group(1)
            inner = re.sub(r"<(/?)h([1-5])\b", lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + 2)}", inner)
            body.append('<h3>Worked solution</h3><div class="worked">' + inner + "</div>")
    style = "\n".join(styles) + HTML_STYLE
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(heading)}</title>\n<style>\n{style}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def html_question(v, blanks=None) -> str:
    """A variant's question as HTML; ``blanks`` (quantity → HTML) puts an answer field after each."""
    out = []
    if v.problem.description:
        out.append(f"<p>{html.escape(v.problem.description.strip())}</p>")
    out.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in _problem_lines(v)) + "</ul>")
    out += [f'<div class="eq">{html.escape(e)}</div>' for e in v.trace.equations]
    items = [f"<li>{html.escape(s)} = {html_array(value, given_text)}</li>" for s, value in givens(v)]
    if _rate(v) is not None:
        items.append(f"<li>learning rate η = {html.escape(_rate(v))}</li>")
    out.append("<p>Given:</p><ul>" + "".join(items) + "</ul>")
    if blanks is None:
        out.append("<p>Compute:</p><ol>" + "".join(f"<li>{html.escape(_question(q))}</li>" for q in v.quantities) + "</ol>")
    else:
        out.append("<p>Compute:</p><ol>" + "".join(f"<li>{html.escape(_question(q))} = {blanks(q)}</li>"
                                                   for q in v.quantities) + "</ol>")
    return "\n".join(out)


# ------------------------------------------------------------------ planted mistakes
PLANTED_KINDS = ("forward", "output", "error", "loss", "local", "delta", "contribution", "gradient", "update")
PLANTED_HEADING = "Worked solution (it contains one mistake: find it and correct it)"


def planted_solution(v):
    """[(step, [(symbol, formula text or None, value)])]: the worked solution with the planted
    mistake, every computed quantity in reading order (a rewritten part of the planted
    formula, such as one BPTT contribution of a gradient, shown on its own line)."""
    planted = v.planted
    out = []
    for index, (step, values) in enumerate(zip(v.trace.steps, planted.values), start=1):
        parts = {}
        if index == planted.step:
            parts = {node.id: (formula, value) for node, formula, value in planted.rewritten_parts(step.derivation)}
            parts.setdefault(planted.node.id, (planted.formula, values[planted.node.id]))
        rows = []
        named = {n.symbol for n in step.derivation if n.kind != "local"}
        for node in step.derivation:
            if node.kind not in PLANTED_KINDS or (node.formula is None and node.kind != "local"):
                continue  # givens are in the question; an equations problem's local derivatives are numbers
            if node.kind == "local" and node.symbol in named:
                continue  # ∂L/∂ŷ as a local derivative and as the delta: once
            formula, value = parts.get(node.id, (node.formula, values[node.id]))
            text = None if formula is None else formula.text()
            rows.append((node.symbol, None if text == node.symbol else text, value))
        out.append((index, rows))
    return out


def _shown(generation):
    from .numbers import DecimalNumbers

    return DecimalNumbers(_decimals(generation)).text


def mistake_statement(v) -> tuple:
    """(where, what, correction, right value): the answer to "find the error", as plain text
    (the right value an array, written as the key writes values)."""
    planted, node = v.planted, v.planted.node
    derivation = v.trace.steps[planted.step - 1].derivation
    step = f" in training step {planted.step}" if len(v.trace.steps) > 1 else ""
    parts = planted.rewritten_parts(derivation)
    place = f"{parts[-1][0].symbol}, part of {node.symbol}" if parts else node.symbol
    where = f"The mistake is in {place}{step} ({planted.where}): {planted.explanation}."
    what = f"Mistake {planted.id}: {planted.mistake.summary}."
    rights = [f"{part.symbol} = {part.formula.text()}" for part, _, _ in parts] + [f"{node.symbol} = {node.formula.text()}"]
    correction = (f"Right: {'; '.join(rights)}. The quantities after it are computed from the wrong value, so only "
                  f"this one is wrong. The right value of {node.symbol}:")
    return where, what, correction, node.value


def _markdown_planted(v, generation, answers) -> list:
    number = _shown(generation)
    out = [f"### {PLANTED_HEADING}", ""]
    steps = planted_solution(v)
    for index, rows in steps:
        if len(steps) > 1:
            out += [f"Training step {index}:", ""]
        out += [f"- {symbol}" + (f" = {formula}" if formula else "") + f" = {bracket_text(value, number)}"
                for symbol, formula, value in rows]
        out.append("")
    if answers:
        where, what, correction, right = mistake_statement(v)
        out += ["### The mistake", "", where, "", what, "", f"{correction} {bracket_text(right, generation.numbers.text)}.", ""]
    return out


def _latex_planted(v, generation, answers) -> list:
    number = _shown(generation)
    out = [r"\subsubsection*{" + latex_text(PLANTED_HEADING) + "}"]
    steps = planted_solution(v)
    for index, rows in steps:
        if len(steps) > 1:
            out.append(latex_text(f"Training step {index}:"))
        out.append(r"\begin{itemize}")
        out += [r"\item " + latex_text(symbol + (f" = {formula}" if formula else "") + " = ")
                + f"${latex_array(value, number)}$" for symbol, formula, value in rows]
        out.append(r"\end{itemize}")
    if answers:
        where, what, correction, right = mistake_statement(v)
        out += [r"\subsubsection*{The mistake}", latex_text(where), "", latex_text(what), "",
                latex_text(correction) + f" ${latex_array(right, generation.numbers.text)}$."]
    return out


def _html_planted(v, generation, answers) -> str:
    number = _shown(generation)
    out = [f"<h3>{html.escape(PLANTED_HEADING)}</h3>"]
    steps = planted_solution(v)
    for index, rows in steps:
        if len(steps) > 1:
            out.append(f"<p>Training step {index}:</p>")
        out.append('<ul class="planted">' + "".join(
            f"<li>{html.escape(symbol + (f' = {formula}' if formula else ''))} = {html_array(value, number)}</li>"
            for symbol, formula, value in rows) + "</ul>")
    if answers:
        where, what, correction, right = mistake_statement(v)
        out += ["<h3>The mistake</h3>", f"<p>{html.escape(where)}</p>", f"<p>{html.escape(what)}</p>",
                f"<p>{html.escape(correction)} {html_array(right, generation.numbers.text)}.</p>"]
    return "\n".join(out)


# ------------------------------------------------------------------ answers files
def answers_toml(generation, variant) -> str:
    """The key in ``deltalab check``'s answers format: top-level ``loss``, tables keyed as in
    ``deltalab solve --format json``."""
    numbers = generation.numbers
    return (f"# the key of {variant.name}.toml (deltalab generate)\n"
            + answers_text([(q.step, q.section, q.key, _nested(q.value, numbers.answer)) for q in variant.quantities]))


def answers_text(entries) -> str:
    """(step, section, key, value) as an answers file: step 1 at the top (``loss``,
    ``[deltas]``, …), later steps in ``[steps.N.…]`` tables."""
    steps = {}
    for step, section, key, value in entries:
        data = steps.setdefault(step, {})
        if section == "loss":
            data["loss"] = value
        else:
            data.setdefault(section, {})[key] = value
    ordered = {}
    for step, data in sorted(steps.items()):
        table = {k: data[k] for k in data if not isinstance(data[k], dict)}
        table.update({k: data[k] for k in data if isinstance(data[k], dict)})
        if step == 1:
            ordered.update(table)
        else:
            ordered.setdefault("steps", {})[str(step)] = table
    if "steps" in ordered:  # after step 1's tables
        ordered["steps"] = ordered.pop("steps")
    return dumps(ordered)


def _nested(value, convert):
    if isinstance(value, list):
        return [_nested(v, convert) for v in value]
    return convert(value)


# ------------------------------------------------------------------ Moodle XML
def moodle_xml(generation) -> str:
    """Moodle XML: one Embedded answers (Cloze) question per variant, a NUMERICAL blank
    ``{1:NUMERICAL:=value:tolerance}`` for every entry of every asked quantity."""
    numbers = generation.numbers
    tolerance = _number(numbers.tolerance)
    category = f"$course$/{generation.template.title}"
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<quiz>",
           '  <question type="category">', f"    <category><text>{html.escape(category)}</text></category>",
           "  </question>"]
    for v in generation.variants:
        def blanks(q):
            return html_array_blanks(q.value, lambda x: "{1:NUMERICAL:=" + _number(_moodle_value(numbers, x)) + ":"
                                     + tolerance + "}")
        text = html_question(v, blanks)
        feedback = "<ol>" + "".join(f"<li>{html.escape(_question(q))} = {html_array(q.value, numbers.text)}</li>"
                                    for q in v.quantities) + "</ol>"
        out += ['  <question type="cloze">',
                f"    <name><text>{html.escape(generation.template.title)}: variant {v.number}</text></name>",
                '    <questiontext format="html">', f"      <text><![CDATA[{_cdata(text)}]]></text>",
                "    </questiontext>",
                '    <generalfeedback format="html">', f"      <text><![CDATA[{_cdata(feedback)}]]></text>",
                "    </generalfeedback>",
                "    <penalty>0.3333333</penalty>", "    <hidden>0</hidden>",
                f"    <idnumber>{html.escape(v.name)}</idnumber>", "  </question>"]
    out.append("</quiz>")
    return "\n".join(out) + "\n"


def html_array_blanks(value, blank) -> str:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return blank(float(a))
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim == 2:
        rows = "".join("<tr>" + "".join(f"<td>{blank(float(x))}</td>" for x in row) + "</tr>" for row in a)
        return f'<table class="m">{rows}</table>'
    return "".join(f"<span>[{', '.join(str(i + 1) for i in index)}]{html_array_blanks(a[index], blank)}</span>"
                   for index in np.ndindex(a.shape[:-2]))


def _moodle_value(numbers, value):
    from .numbers import DecimalNumbers, RoundedNumbers

    if isinstance(numbers, DecimalNumbers):
        return numbers.rounded(value)
    if isinstance(numbers, RoundedNumbers):
        return round(float(value), numbers.decimals)
    return float(value)


def _number(value) -> str:
    v = float(value)
    v = 0.0 if v == 0 else v
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


def _cdata(text: str) -> str:
    return text.replace("]]>", "]]]]><![CDATA[>")


# ------------------------------------------------------------------ stress
def stress_report(generation) -> dict:
    tries = [v.tries for v in generation.variants]
    ranges = {}
    for v in generation.variants:
        for q in v.quantities:
            values = np.asarray(q.value, dtype=np.float64).reshape(-1)
            low, high = float(values.min()), float(values.max())
            if q.label in ranges:
                low, high = min(low, ranges[q.label][0]), max(high, ranges[q.label][1])
            ranges[q.label] = (low, high)
    return {
        "template": generation.template.path,
        "seed": generation.seed,
        "variants": len(tries),
        "draws": sum(tries),
        "tries_per_variant": tries,
        "mean_tries": sum(tries) / len(tries),
        "constraints": {c.name: c.setting() for c in generation.template.constraints},
        "plant_mistake": None if generation.mistake is None else generation.mistake.id,
        "rejected": dict(sorted(generation.rejections.items())),
        "ranges": {label: {"min": low, "max": high} for label, (low, high) in ranges.items()},
    }


def stress_summary(stress) -> str:
    lines = [f"{stress['variants']} variants from {stress['draws']} draws "
             f"({stress['mean_tries']:.1f} tries per accepted variant, at most {max(stress['tries_per_variant'])})"]
    if stress["rejected"]:
        lines.append("rejected: " + ", ".join(f"{name} {n}" for name, n in
                                              sorted(stress["rejected"].items(), key=lambda kv: -kv[1])))
    else:
        lines.append("rejected: none")
    for label, r in stress["ranges"].items():
        lines.append(f"  {label}: {r['min']:.6g} … {r['max']:.6g}")
    return "\n".join(lines) + "\n"


def stress_json(stress) -> str:
    return json.dumps(stress, ensure_ascii=False, indent=2) + "\n"

