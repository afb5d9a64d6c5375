"""Built-in problem files: one per numbered exercise of the lecture (``deltalab examples``)."""
from __future__ import annotations

import os

# a str: ``deltalab solve --example`` never imports pathlib (5 ms of its start); FOLDER is its Path
DIRECTORY = os.path.dirname(os.path.realpath(__file__))


def __getattr__(name):
    if name == "FOLDER":
        from pathlib import Path

        return Path(DIRECTORY)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def example_names():
    from pathlib import Path

    return sorted(p.stem for p in Path(DIRECTORY).glob("*.toml"))


def example_file(name) -> str:
    """The file of the built-in example ``name`` as a string: ``str(example_path(name))``."""
    if name and os.sep not in name and not (os.altsep and os.altsep in name):
        path = os.path.join(DIRECTORY, f"{name}.toml")  # one path component: the same string as pathlib's
        if os.path.isfile(path):
            return path
    return str(example_path(name))


def example_path(name):
    """The file of the built-in example ``name`` (a :class:`pathlib.Path`); SpecError if there is none."""
    from pathlib import Path

    from ..errors import SpecError

    path = Path(DIRECTORY) / f"{name}.toml"
    if not path.is_file():
        import difflib

        names = example_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"no built-in example {name!r}{hint} (see `deltalab examples`)")
    return path
