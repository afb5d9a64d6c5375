"""Problem files and problem kinds.

- :mod:`.file`    reading a problem file (:func:`load_problem`, :func:`parse_problem`) into a Problem;
- :mod:`.reader`  the field reader: one-line errors naming file and field, did-you-mean;
- :mod:`.kinds`   the registry of problem kinds (``model.type``): :mod:`.layered` (mlp, cnn),
  :mod:`.recurrent` (rnn, lstm), :mod:`.equations`; each reads its sections, builds its model,
  records a step, describes itself and gives PyTorch's reference (see :mod:`.base`);
- :mod:`.layers`  the layer registry of layered problems, one module per layer kind.

This package imports nothing heavy on its own: ``models`` reads the layer registry from here.
"""


def load_problem(path):
    """Read and validate a problem file (see :func:`deltalab.problems.file.load_problem`)."""
    from .file import load_problem as load

    return load(path)


def parse_problem(text, path="<problem>"):
    """Validate the text of a problem file (see :func:`deltalab.problems.file.parse_problem`)."""
    from .file import parse_problem as parse

    return parse(text, path)


__all__ = ["load_problem", "parse_problem"]
