"""HTML pages typeset a number's sign as a minus (U+2212) and leave free text's hyphens alone:
"cross-entropy", "many-to-many", "max-pool" keep their hyphen; -0.5, 1e-06 and x[t-1] get a minus."""
from __future__ import annotations

import html
import re

import pytest

from deltalab.cli import main
from deltalab.examples import example_names, example_path
from deltalab.problem import load_problem
from deltalab.report._common import html_minus

WORD_WITH_HYPHEN = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z][A-Za-z0-9]*)+\b")
ASCII_SIGN = re.compile(r"(?:(?<![\w.\]\)])|(?<=\de))-(?=[0-9])")


def visible_text(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("text, expected", [
    ("cross-entropy", "cross-entropy"), ("many-to-many", "many-to-many"), ("max-pool 2×2", "max-pool 2×2"),
    ("rnn-many-to-many-identity", "rnn-many-to-many-identity"), ("cnn-conv-10x10-to-10x10x5", "cnn-conv-10x10-to-10x10x5"),
    ("Back-propagation through time", "Back-propagation through time"), ("well - known", "well - known"),
    ("-0.5", "−0.5"), ("x = -1", "x = −1"), ("(-2, 3)", "(−2, 3)"), ("[-0.25 0.5]", "[−0.25 0.5]"),
    ("1e-06·|numeric|", "1e−06·|numeric|"), ("z2[t-1]", "z2[t−1]"), ("h - y", "h − y"), ("3-4", "3-4"),
])
def test_a_hyphen_is_a_minus_only_where_it_is_a_sign(text, expected):
    assert html_minus(text) == expected


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    result = {}
    for name in example_names():
        path = out / f"{name}.html"
        assert main(["solve", "--example", name, "--format", "html", "-o", str(path)]) == 0
        result[name] = visible_text(path.read_text())
    return result


@pytest.mark.parametrize("name", example_names())
def test_every_page_keeps_its_words_hyphens_and_writes_signs_as_minus(pages, name):
    text = pages[name]
    problem = load_problem(example_path(name))
    for word in WORD_WITH_HYPHEN.findall(f"{problem.title} {problem.description or ''}"):
        assert word in text, (name, word)
    signs = [text[max(0, m.start() - 15):m.end() + 8] for m in ASCII_SIGN.finditer(text)]
    assert signs == [], name


def test_negative_numbers_are_written_with_the_minus_sign(pages):
    assert "−0.0148" in pages["eq-lstm-cell"] and "-0.0148" not in pages["eq-lstm-cell"]
    assert "cross-entropy" in pages["eq-shift-register"] and "cross−entropy" not in pages["eq-shift-register"]
    assert "many-to-many" in pages["eq-rnn-many-to-many-identity"]
    assert "max-pool" in pages["cnn-feature-detectors"]
