"""Sum over paths: the terms a reader sees add up to the total the reader sees.

Read from the rendered pages, not from the document model: each example's HTML page is parsed,
every numeric row of a chain-rule sum is added up as written (in whole units of the last
decimal) and compared with the total written under it; the terminal's scalar sums likewise."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from deltalab.cli import main
from deltalab.examples import example_names

VOID = {"br", "img", "meta", "link", "input", "hr", "col", "wbr", "source"}


class Element:
    def __init__(self, tag, attrs, parent):
        self.tag, self.classes, self.parent = tag, set(dict(attrs).get("class", "").split()), parent
        self.children = []  # Element or str

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, predicate):
        for c in self.children:
            if isinstance(c, Element):
                if predicate(c):
                    yield c
                yield from c.find_all(predicate)


class TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__()
        self.root = self.current = Element("root", [], None)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def _number(text):
    return float(text.strip().replace("−", "-"))


def _term(span):
    """(sign, numbers of the term in reading order, label) of one ``span.term``."""
    first = next((c for c in span.children if isinstance(c, Element) or c.strip()), None)
    sign = -1 if isinstance(first, Element) and first.tag == "span" and first.text().strip() == "−" else 1
    cells = [e.text() for e in span.find_all(lambda e: e.tag == "td" or "num" in e.classes)]
    return sign, [_number(c) for c in cells], span.text()


def path_chains(page):
    """[(lhs, [rows of terms])] of the chains after the "Sum over paths" heading."""
    builder = TreeBuilder()
    builder.feed(page)
    body = list(builder.root.find_all(lambda e: e.tag in ("h2", "h3") or "chain" in e.classes))
    chains, inside = [], False
    for element in body:
        if element.tag in ("h2", "h3"):
            inside = element.text().startswith("Sum over paths")
            continue
        if inside and element.parent is not None and "chain" not in element.parent.classes:
            rows = [[_term(t) for t in row.find_all(lambda e: "term" in e.classes and e.tag == "span"
                                                    and "term" not in e.parent.classes)]
                    for row in element.find_all(lambda e: "row" in e.classes)]
            lhs = next(element.find_all(lambda e: "lhs" in e.classes)).text()
            chains.append((lhs, rows))
    return chains


def _units(values):
    return np.rint(np.asarray(values) * 10**4).astype(np.int64)


EXAMPLES = [n for n in example_names() if n.startswith("eq-")]


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_paths_on_an_html_page_add_up_to_the_total_on_it(name, tmp_path):
    out = tmp_path / "page.html"
    assert main(["solve", "--example", name, "--format", "html", "-o", str(out)]) == 0
    chains = path_chains(out.read_text())
    if not chains:
        pytest.skip(f"{name} has no sum over paths")
    checked = 0
    for lhs, rows in chains:
        total = rows[-1]
        assert len(total) == 1 and total[0][1], (lhs, total)
        numeric = [row for row in rows[:-1] if all(numbers or "more path" in label or "rounding" in label
                                                   for _, numbers, label in row)]
        for row in numeric:
            added = sum(sign * _units(numbers) for sign, numbers, _ in row if numbers)
            assert np.array_equal(added, _units(total[0][1])), (name, lhs, [t[2] for t in row], total[0][2])
            checked += 1
        hidden = [label for row in rows for _, _, label in row if "more path" in label]
        if hidden:
            assert numeric, (name, lhs, "a chain with hidden paths must show their sum as a term")
    assert checked or all(len(rows) <= 2 for _, rows in chains)


def test_the_lstm_cell_shows_the_dominant_path_first_and_sums_to_its_total_in_the_terminal(tmp_path, capsys):
    out = tmp_path / "lstm.txt"
    assert main(["solve", "--example", "eq-lstm-cell", "-o", str(out)]) == 0
    text = out.read_text()
    section = text[text.index("Sum over paths"):]
    section = section[:section.index("Gradients ──")]
    chains = [c for c in re.split(r"\n\s*\n", section.strip()) if c.startswith("  ∂L/∂")]
    assert len(chains) >= 6
    for chain in chains:
        rows = re.split(r"\n\s+= ", chain)
        total, numbers = rows[-1], rows[-2]
        assert re.fullmatch(r"-?\d+\.\d{4}", total.strip()), total
        terms = re.findall(r"(^|[+−-])\s*(\d+\.\d{4})", " ".join(numbers.split()).replace("- ", "-"))
        signed = [(-1 if sign in ("−", "-") else 1) * round(float(v) * 10**4) for sign, v in terms]
        assert sum(signed) == round(float(total) * 10**4), (chain, signed)
        assert "more paths" in numbers
    w_xi = chains[0]
    assert w_xi.split("\n")[0].startswith("  ∂L/∂w_xi")
    assert re.search(r"= -0\.0148 − 0\.0046", w_xi) and w_xi.rstrip().endswith("= -0.0216")
    assert "the other 24 add up to" in section or "the other 24 add up to" in text
