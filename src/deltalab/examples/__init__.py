"""Built-in problem files: one per numbered exercise of the lecture (``deltalab examples``)."""
from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def example_names():
    return sorted(p.stem for p in FOLDER.glob("*.toml"))


def example_path(name) -> Path:
    from ..errors import SpecError

    path = FOLDER / f"{name}.toml"
    if not path.is_file():
        import difflib

        names = example_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"no built-in example {name!r}{hint} (see `deltalab examples`)")
    return path
