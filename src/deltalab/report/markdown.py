"""The worked solution as GitHub-flavoured Markdown: headings, tables of vectors, fenced matrices.

Notation is always inside code spans or fences: ``z[1](2)`` in plain Markdown would be a link.
"""
from __future__ import annotations

import re

from ._common import as_array, chain_lines, text_block
from .document import build

WIDTH = 100


def escape(text: str) -> str:
    """Plain text safe in Markdown (brackets, emphasis, pipes, HTML)."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text)


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(headers, rows) -> list:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _is_simple(chain) -> bool:
    """One row, one recorded value of at most one dimension: it fits in a table cell."""
    if len(chain.rows) != 1 or len(chain.rows[0]) != 1:
        return False
    content = chain.rows[0][0].content
    return not isinstance(content, str) and as_array(content).ndim <= 1


def prose_lines(block):
    """The Markdown lines of a title, heading, text or list block; None for other blocks."""
    if block.kind == "title":
        return [f"# {escape(block.text)}", ""]
    if block.kind == "heading":
        return ["#" * block.level + " " + escape(block.text), ""]
    if block.kind == "text":
        return [escape(block.text), ""]
    if block.kind == "list":
        return [f"- {escape(line)}" for line in block.items] + [""]
    return None


def render(trace, decimals: int = 4) -> str:
    out = []
    for block in build(trace, decimals):
        prose = prose_lines(block)
        if prose is not None:
            out += prose
        elif block.kind == "equations":
            out += [f"**{escape(block.text)}**", ""] + [f"- {_code(line)}" for line in block.items] + [""]
        elif block.kind == "chains":
            simple = [c for c in block.items if _is_simple(c)]
            if len(simple) == len(block.items):
                rows = [[_code(c.lhs), _code(text_block(c.rows[0][0].content, decimals, c.rows[0][0].keep_decimals,
                                                                 marks=c.rows[0][0].marked)[0])]
                        for c in block.items]
                out += table(["Symbol", "Value"], rows) + [""]
            else:
                out.append("```text")
                for chain in block.items:
                    lines = chain_lines(chain, decimals, WIDTH)
                    if len(lines) > 1 and out[-1] not in ("", "```text"):
                        out.append("")
                    out += lines
                    if len(lines) > 1:
                        out.append("")
                while out[-1] == "":
                    out.pop()
                out += ["```", ""]
        elif block.kind == "table":
            out += table(block.headers, block.items) + [""]
    return "\n".join(out).rstrip() + "\n"
