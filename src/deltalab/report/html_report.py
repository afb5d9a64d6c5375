"""The worked solution as one self-contained HTML page a teacher can share.

Inline CSS only: no scripts, fonts, images or links to anything outside the page. Maths is
plain HTML: ``z<sup>[1]</sup>(2)`` for the notation and bracketed tables for matrices.
"""
from __future__ import annotations

from html import escape

from ._common import as_array, cells, html_symbol, number, slices
from .document import build

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 70rem;
       margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; margin-top: 2rem; } h3 { margin-bottom: .3rem; }
.eq { font-family: "Cambria Math", "STIX Two Math", Georgia, serif; margin: .2rem 0 .2rem 1rem; }
table.chain { border-collapse: collapse; margin: .3rem 0 .3rem 1rem; }
table.chain td { padding: .25rem .3rem; vertical-align: middle;
                 font-family: "Cambria Math", "STIX Two Math", Georgia, serif; }
table.chain td.lhs { text-align: right; white-space: nowrap; }
table.m { display: inline-table; border-collapse: separate; border-spacing: .6rem .05rem;
          border-left: 2px solid #333; border-right: 2px solid #333; border-radius: 4px;
          vertical-align: middle; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9rem; }
table.m td { text-align: right; padding: 0; }
.slice { display: inline-block; text-align: center; margin-right: .6rem; }
.slice small { display: block; color: #666; }
table.grid { border-collapse: collapse; margin: .5rem 0; }
table.grid th, table.grid td { border: 1px solid #bbb; padding: .25rem .6rem; }
table.grid td { text-align: right; } table.grid td:first-child { text-align: left; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #cf222e; font-weight: bold; }
""".strip()


def matrix(value, decimals: int) -> str:
    array = as_array(value)
    if array.ndim == 0:
        return f'<span class="num">{number(array, decimals)}</span>'
    if array.ndim <= 2:
        rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                       for row in cells(array, decimals))
        return f'<table class="m">{rows}</table>'
    return "".join(f'<span class="slice"><small>{escape(label)}</small>{matrix(part, decimals)}</span>'
                   for label, part in slices(array))


def _term(term, decimals) -> str:
    body = html_symbol(term.content) if isinstance(term.content, str) else matrix(term.content, decimals)
    return f"{escape(term.op)} {body}" if term.op else body


def _cell(text: str) -> str:
    if text == "✓":
        return '<span class="ok">✓</span>'
    if text == "✗":
        return '<span class="bad">✗</span>'
    return html_symbol(text)


def render(trace, decimals: int = 4) -> str:
    body = []
    for block in build(trace, decimals):
        if block.kind == "title":
            body.append(f"<h1>{escape(block.text)}</h1>")
        elif block.kind == "heading":
            level = min(max(block.level, 2), 4)
            body.append(f"<h{level}>{escape(block.text)}</h{level}>")
        elif block.kind == "text":
            body.append(f"<p>{html_symbol(block.text)}</p>")
        elif block.kind == "list":
            body.append("<ul>" + "".join(f"<li>{html_symbol(line)}</li>" for line in block.items) + "</ul>")
        elif block.kind == "equations":
            body.append(f"<h3>{escape(block.text)}</h3>")
            body += [f'<div class="eq">{html_symbol(line)}</div>' for line in block.items]
        elif block.kind == "chains":
            rows = []
            for chain in block.items:
                for i, row in enumerate(chain.rows):
                    lhs = html_symbol(chain.lhs) if i == 0 else ""
                    terms = " ".join(_term(t, decimals) for t in row)
                    rows.append(f'<tr><td class="lhs">{lhs}</td><td>=</td><td>{terms}</td></tr>')
            body.append('<table class="chain">' + "".join(rows) + "</table>")
        elif block.kind == "table":
            head = "".join(f"<th>{escape(h)}</th>" for h in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in block.items)
            body.append(f'<table class="grid"><tr>{head}</tr>{rows}</table>')
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(trace.title)}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
