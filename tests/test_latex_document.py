"""``--format latex`` is a complete document: every built-in example compiles with pdflatex."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from deltalab.examples import example_names
from deltalab.report.latex import text

PDFLATEX = shutil.which("pdflatex")


def test_text_escapes_latex_specials_and_writes_symbols_as_maths():
    assert text("50% of #1 & $x_1 {y} ~z^") == r"50\% of \#1 \& \$x\_1 \{y\} \textasciitilde{}z\textasciicircum{}"
    assert text("δ[1] → η²") == r"$\delta$[1] $\to$ $\eta$$^{2}$"
    assert text("Sa-Couto, Técnico") == "Sa-Couto, Técnico"


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (Debian: apt-get install texlive-latex-base)")
@pytest.mark.parametrize("name", example_names())
def test_every_example_compiles_with_pdflatex(tmp_path, name):
    tex = tmp_path / "solution.tex"
    solved = subprocess.run([sys.executable, "-m", "deltalab.cli", "solve", "--example", name, "--format", "latex",
                             "-o", str(tex)], capture_output=True, text=True, timeout=120)
    assert solved.returncode == 0, solved.stderr
    source = tex.read_text()
    assert source.startswith(r"\documentclass") and source.rstrip().endswith(r"\end{document}")
    result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "solution.pdf").stat().st_size > 1000
