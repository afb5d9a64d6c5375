"""The worked solution as one self-contained HTML page a teacher can share.

Inline CSS only: no scripts, fonts, images or links to anything outside the page. Maths is
plain HTML: ``z<sup>[1]</sup>(2)`` for the notation and bracketed tables for matrices; the
computation graph is an inline ``<svg>`` (:mod:`.graph_svg`), scaled to the page's width.
"""
from __future__ import annotations

from html import escape

import numpy as np

from ._common import as_array, cells, html_minus, html_symbol, layer_notation, marked_slices, number
from .document import build

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 70rem;
       margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; margin-top: 2rem; } h3 { margin-bottom: .3rem; }
.eq { font-family: "Cambria Math", "STIX Two Math", Georgia, serif; margin: .2rem 0 .2rem 1rem; }
.chain { margin: .5rem 0 .5rem 1rem; font-family: "Cambria Math", "STIX Two Math", Georgia, serif; }
.chain .row { display: flex; flex-wrap: wrap; align-items: center; column-gap: .35rem; row-gap: .3rem;
              margin: .15rem 0; }
.chain .lhs { white-space: nowrap; }
.chain .rest { padding-left: 1.5rem; }
.term { display: inline-flex; align-items: center; gap: .3rem; max-width: 100%; }
.wide { display: inline-block; max-width: 100%; overflow-x: auto; vertical-align: middle; }
table.m { display: inline-table; border-collapse: separate; border-spacing: .6rem .05rem;
          border-left: 2px solid #333; border-right: 2px solid #333; border-radius: 4px;
          vertical-align: middle; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9rem; }
table.m td { text-align: right; padding: 0; white-space: nowrap; }
table.m td.win { font-weight: bold; text-decoration: underline; }
.slice { display: inline-block; text-align: center; margin-right: .6rem; }
.slice small { display: block; color: #666; }
.grid-box { max-width: 100%; overflow-x: auto; }
table.grid { border-collapse: collapse; margin: .5rem 0; }
table.grid th, table.grid td { border: 1px solid #bbb; padding: .25rem .6rem; }
table.grid td { text-align: right; } table.grid td:first-child { text-align: left; }
figure.graph { margin: .5rem 0; max-width: 100%; }
figure.graph svg { display: block; max-width: 100%; height: auto; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #cf222e; font-weight: bold; }
@media (max-width: 40rem) {
  body { margin: 1rem auto; padding: 0 .6rem; }
  .chain, .eq { margin-left: 0; }
  .chain .rest { padding-left: .8rem; }
  table.m { border-spacing: .35rem .05rem; font-size: .8rem; }
}
@media print {
  body { max-width: none; margin: 0; font-size: 10.5pt; }
  h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  .row, table.m, table.grid tr { break-inside: avoid; page-break-inside: avoid; }
  .wide, .grid-box { overflow: visible; }
  figure.graph { break-inside: avoid; page-break-inside: avoid; }
}
""".strip()


def _cell_html(text: str, marked: bool) -> str:
    """One matrix entry; a marked one (a pooling window's winner) bold and underlined."""
    return f'<td class="win">{html_minus(text)}</td>' if marked else f"<td>{html_minus(text)}</td>"


def matrix(value, decimals: int, keep_decimals: bool = False, marks=None) -> str:
    array = as_array(value)
    if array.ndim == 0:
        return f'<span class="num">{html_minus(number(array, decimals))}</span>'
    if array.ndim <= 2:
        shown = cells(array, decimals, keep_decimals, np.zeros(array.shape, bool) if marks is None else marks,
                      _cell_html)
        rows = "".join("<tr>" + "".join(row) + "</tr>" for row in shown)
        return f'<table class="m">{rows}</table>'
    return "".join(f'<span class="slice"><small>{escape(label)}</small>{matrix(part, decimals, keep_decimals, part_marks)}'
                   f'</span>' for label, part, part_marks in marked_slices(array, marks))


def _term(term, decimals, layers=True) -> str:
    """One term with its operator, kept together when a row wraps on a narrow screen (so a
    wrapped sum of two matrices never reads as one taller matrix); a matrix wider than the
    screen scrolls inside its own box."""
    if isinstance(term.content, str):
        body = f"<span>{html_symbol(term.content, layers)}</span>"  # one flex item: no gap before a superscript
    else:
        body = f'<span class="wide">{matrix(term.content, decimals, term.keep_decimals, term.marked)}</span>'
    op = f"<span>{escape(_html_op(term.op))}</span>" if term.op else ""
    return f'<span class="term">{op}{body}</span>'


def _html_op(op: str) -> str:
    return "−" if op == "-" else op


def _cell(text: str, layers=True) -> str:
    if text == "✓":
        return '<span class="ok">✓</span>'
    if text == "✗":
        return '<span class="bad">✗</span>'
    return html_symbol(text, layers)


def graph_section(trace) -> list:
    """The computation graph's section: the inline SVG picture (or one line saying why there
    is none); nothing for a trace without a derivation record."""
    if not trace.steps or trace.steps[0].derivation is None:
        return []
    from .graph_svg import inline_svg

    return ["<h2>Computation graph</h2>", inline_svg(trace)]


def render(trace, decimals: int = 4, figure: bool = True) -> str:
    body = []
    layers = layer_notation(trace)
    pending = graph_section(trace) if figure else []  # after the problem's statement, before the forward pass
    for block in build(trace, decimals):
        if pending and block.kind == "heading" and block.level <= 2 and block.text != "Problem":
            body += pending
            pending = []
        if block.kind == "title":
            body.append(f"<h1>{escape(html_minus(block.text))}</h1>")
        elif block.kind == "heading":
            level = min(max(block.level, 2), 4)
            body.append(f"<h{level}>{escape(html_minus(block.text))}</h{level}>")
        elif block.kind == "text":
            body.append(f"<p>{html_symbol(block.text, layers)}</p>")
        elif block.kind == "list":
            body.append("<ul>" + "".join(f"<li>{html_symbol(line, layers)}</li>" for line in block.items) + "</ul>")
        elif block.kind == "equations":
            body.append(f"<h3>{escape(html_minus(block.text))}</h3>")
            body += [f'<div class="eq">{html_symbol(line, layers)}</div>' for line in block.items]
        elif block.kind == "chains":
            for chain in block.items:
                rows = []
                for i, row in enumerate(chain.rows):
                    head = f'<span class="lhs">{html_symbol(chain.lhs, layers)}</span> ' if i == 0 else ""
                    terms = "".join(_term(t, decimals, layers) for t in row)
                    rows.append(f'<div class="row{"" if i == 0 else " rest"}">{head}<span>=</span>{terms}</div>')
                body.append('<div class="chain">' + "".join(rows) + "</div>")
        elif block.kind == "table":
            head = "".join(f"<th>{escape(h)}</th>" for h in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{_cell(c, layers)}</td>" for c in row) + "</tr>" for row in block.items)
            body.append(f'<div class="grid-box"><table class="grid"><tr>{head}</tr>{rows}</table></div>')
    body += pending
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(html_minus(trace.title))}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
