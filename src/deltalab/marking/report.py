"""How a graded submission is shown: terminal (rich), markdown, html, plain text and the
JSON contract of ``deltalab check --format json`` (stable: scripts and graders read it)::

    {"problem": str, "student": str | null, "source": str,
     "score": float, "max_score": float, "follow_through": bool,
     "counts": {"right": int, "consistent": int, "wrong": int, "missing": int},
     "first_wrong": {"section", "key", "step"} | null,
     "quantities": [{"section": str,          # "loss" or the solve JSON section ("deltas", …)
                     "key": str,              # the key there ("z[1](2)"; "loss" for the loss)
                     "step": int,             # training step, 1-based
                     "symbol": str,           # the lecture's notation ("δ[1](2)")
                     "answer": number | [...] | null,   # null: missing
                     "true": number | [...],
                     "implied": number | [...] | null,  # the formula on the student's own inputs
                     "verdict": "right" | "consistent" | "wrong" | "missing",
                     "points": float, "weight": float,
                     "diagnoses": [{"mistake": str, "explanation": str}]}, ...]}

Values are full-precision floats (nested lists for arrays), NaN/inf as null.
"""
from __future__ import annotations

import html
import json
import math

import numpy as np

MARK = {"right": "✓ right", "consistent": "≈ consistent", "wrong": "✗ wrong", "missing": "– missing"}


def _json_value(value):
    if value is None or isinstance(value, str):  # str: an exact expression in unknowns
        return value
    a = np.asarray(value, dtype=np.float64)

    def clean(v):
        if isinstance(v, list):
            return [clean(i) for i in v]
        return v if math.isfinite(v) else None

    return clean(a.tolist())


def to_dict(result) -> dict:
    first = result.first_wrong
    return {
        "problem": result.problem, "student": result.student, "source": result.source,
        "score": float(result.score), "max_score": float(result.max_score), "follow_through": result.follow_through,
        "counts": result.counts,
        "first_wrong": None if first is None else {"section": first.section, "key": first.key, "step": first.step},
        "quantities": [{"section": q.section, "key": q.key, "step": q.step, "symbol": q.symbol,
                        "answer": _json_value(q.answer), "true": _json_value(q.true),
                        "implied": _json_value(q.implied), "verdict": q.verdict, "points": float(q.points),
                        "weight": float(q.weight),
                        "diagnoses": [{"mistake": d.mistake, "explanation": d.explanation} for d in q.diagnoses]}
                       for q in result.quantities],
    }


def number_text(value, decimals=4):
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        v = float(a)
        text = f"{v:.{decimals}f}".rstrip("0").rstrip(".") if math.isfinite(v) else str(v)
        return "0" if text in ("-0", "") else text
    return "[" + ", ".join(number_text(v, decimals) for v in a) + "]"


def _written(q):
    if q.written is None:
        return "—"
    if isinstance(q.written, list):
        def join(w):
            return "[" + ", ".join(join(i) for i in w) + "]" if isinstance(w, list) else str(w)
        return join(q.written)
    return str(q.written)


def _implied(q):
    """The value the student's own inputs give, or "= true" where that is the true value (to
    the answer's precision)."""
    from .grading import close

    if q.implied is None or q.tolerance is None or close(q.implied, q.true, q.tolerance):
        return "= true"
    return number_text(q.implied)


def _headline(result):
    counts = result.counts
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    score = f"{result.score:g} / {result.max_score:g}"
    first = result.first_wrong
    lines = [f"{result.problem} — {result.name}", f"Score {score}  ({', '.join(parts) or 'nothing answered'})"]
    if not result.follow_through:
        lines[-1] += "; no follow-through credit"
    lines.append(f"First wrong quantity: {first.symbol} ({first.where})" if first else "No wrong quantity.")
    return lines


def _sections(result):
    order = []
    groups = {}
    for q in result.quantities:
        title = ("loss" if q.section == "loss" else q.section) + ("" if q.step == 1 else f" (step {q.step})")
        if title not in groups:
            order.append(title)
            groups[title] = []
        groups[title].append(q)
    return [(t, groups[t]) for t in order]


def _diagnosis_text(q):
    if q.verdict == "consistent":
        return "follows from your earlier answers"
    if q.verdict != "wrong":
        return ""
    if not q.diagnoses:
        return "no known mistake explains this value"
    return "; ".join(f"{d.mistake}: {d.explanation}" for d in q.diagnoses)


def markdown(result) -> str:
    lines = [f"# {_headline(result)[0]}", "", f"**{_headline(result)[1]}**", "", _headline(result)[2], ""]
    for title, qs in _sections(result):
        lines += [f"## {title}", "", "| quantity | your answer | true value | from your inputs | verdict | diagnosis |",
                  "|---|---|---|---|---|---|"]
        for q in qs:
            cells = [f"{q.symbol} (`{q.key}`)", _written(q), number_text(q.true), _implied(q), MARK[q.verdict],
                     _diagnosis_text(q)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def text(result) -> str:
    lines = _headline(result) + [""]
    for title, qs in _sections(result):
        lines.append(f"[{title}]")
        for q in qs:
            lines.append(f"  {MARK[q.verdict]:14s} {q.symbol} ({q.key}) = {_written(q)}; true {number_text(q.true)}")
            diag = _diagnosis_text(q)
            if diag:
                lines.append(f"                 {diag}")
    return "\n".join(lines) + "\n"


_STYLE = """<style>.dl-check td,.dl-check th{padding:2px 8px;text-align:left;vertical-align:top}
.dl-check .right{color:#17803d}.dl-check .consistent{color:#a16207}.dl-check .wrong{color:#b91c1c}
.dl-check .missing{color:#6b7280}</style>"""


def html_fragment(result) -> str:
    head = _headline(result)
    out = [_STYLE, '<div class="dl-check">', f"<h3>{html.escape(head[0])}</h3>",
           f"<p><b>{html.escape(head[1])}</b><br>{html.escape(head[2])}</p>"]
    for title, qs in _sections(result):
        out.append(f"<h4>{html.escape(title)}</h4><table><tr><th>quantity</th><th>your answer</th><th>true value</th>"
                   "<th>from your inputs</th><th>verdict</th><th>diagnosis</th></tr>")
        for q in qs:
            cells = [f"{q.symbol} ({q.key})", _written(q), number_text(q.true), _implied(q)]
            out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                       + f'<td class="{q.verdict}">{html.escape(MARK[q.verdict])}</td>'
                       + f"<td>{html.escape(_diagnosis_text(q))}</td></tr>")
        out.append("</table>")
    out.append("</div>")
    return "\n".join(out)


def html_page(result) -> str:
    title = html.escape(_headline(result)[0])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body>\n{html_fragment(result)}\n</body></html>\n")


def print_terminal(result, console=None):
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    head = _headline(result)
    console.print(f"[bold]{head[0]}[/bold]")
    console.print(head[1])
    console.print(head[2])
    colour = {"right": "green", "consistent": "yellow", "wrong": "red", "missing": "dim"}
    for title, qs in _sections(result):
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in ("quantity", "your answer", "true value", "from your inputs", "verdict", "diagnosis"):
            table.add_column(column, overflow="fold")
        for q in qs:
            table.add_row(f"{q.symbol} ({q.key})", _written(q), number_text(q.true), _implied(q),
                          f"[{colour[q.verdict]}]{MARK[q.verdict]}[/]", _diagnosis_text(q))
        console.print(table)


def render(result, format="terminal") -> str:
    if format == "json":
        return json.dumps(to_dict(result), ensure_ascii=False, indent=2, allow_nan=False)
    if format == "markdown":
        return markdown(result)
    if format == "html":
        return html_page(result)
    if format in ("text", "terminal"):
        return text(result)
    raise ValueError(f"unknown format {format!r}")


__all__ = ["html_fragment", "html_page", "markdown", "print_terminal", "render", "text", "to_dict"]
