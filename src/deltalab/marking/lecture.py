"""The lecture's own printed answers for the built-in examples taken from the lecture
documents (``deltalab check --example NAME --lecture``): answers files with the numbers the
documents print, shipped in ``deltalab/examples/answers/NAME.toml``."""
from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import SpecError

FOLDER = Path(__file__).resolve().parent.parent / "examples" / "answers"


def lecture_names():
    return sorted(p.stem for p in FOLDER.glob("*.toml"))


def lecture_answers_path(name) -> Path:
    path = FOLDER / f"{name}.toml"
    if not path.is_file():
        names = lecture_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"examples with them: {', '.join(names) or '(none)'}"
        raise SpecError(f"--lecture: the lecture prints no answers for the example {name!r}; {hint}")
    return path


__all__ = ["FOLDER", "lecture_answers_path", "lecture_names"]
