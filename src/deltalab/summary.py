"""``summary(model, input_shape)``: the Keras/torchinfo table of layers, output shapes and parameters.

It runs one forward pass on zeros (batch of one, no graph) and records each layer's output
shape, so the shapes shown are the ones the engine really produces.
"""
from __future__ import annotations

from dataclasses import field

import numpy as np

from .autograd import no_grad
from .records import dataclass
from .tensor import Tensor


@dataclass
class LayerRow:
    name: str
    layer: str
    output_shape: tuple
    parameters: int


@dataclass
class ModelSummary:
    model_name: str
    input_shape: tuple
    rows: list = field(default_factory=list)
    total_parameters: int = 0
    trainable_parameters: int = 0

    @property
    def output_shape(self):
        return self.rows[-1].output_shape if self.rows else self.input_shape

    def table(self, title=None):
        from rich.table import Table
        from rich.text import Text

        from .text import one_line

        # a Text, not a str: rich would read "[...]" in a title from a file as markup
        table = Table(title=Text(one_line(title or f"{self.model_name}  (input {format_shape(self.input_shape)})")))
        table.add_column("layer")
        table.add_column("type")
        table.add_column("output shape", justify="right")
        table.add_column("parameters", justify="right")
        for row in self.rows:
            table.add_row(row.name, row.layer, format_shape(row.output_shape), f"{row.parameters:,}")
        table.add_section()
        table.add_row("total", "", "", f"{self.total_parameters:,}")
        table.add_row("trainable", "", "", f"{self.trainable_parameters:,}")
        return table

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        """The table for a notebook (``summary`` does not print it there: the cell shows it once)."""
        from rich.console import Console

        console = Console(record=True, file=_Discard(), width=100)
        console.print(self.table())
        return console.export_html(inline_styles=True, code_format="<pre style=\"font-family: monospace\">{code}</pre>")

    def __str__(self):
        width = max([len(r.name) + len(r.layer) for r in self.rows] + [10]) + 4
        lines = [f"{'layer':<{width}} {'output shape':>16} {'parameters':>12}"]
        for r in self.rows:
            lines.append(f"{r.name + ' ' + r.layer:<{width}} {format_shape(r.output_shape):>16} {r.parameters:>12,}")
        lines.append(f"{'total':<{width}} {'':>16} {self.total_parameters:>12,}")
        return "\n".join(lines)


def format_shape(shape):
    return "×".join(str(n) for n in shape)


def summary(model, input_shape, dtype=None, print_table=True, console=None, batch_axis=0):
    """Print and return the layer table for one sample of ``input_shape`` (no batch axis).

    A model whose layers are not child modules (the lecture networks with W1, b1, ...) lists
    them itself through ``layer_rows(input_shape)`` -> [(name, type, output_shape, parameters)].
    ``batch_axis`` is where the batch goes (1 for time-major sequences (T, B, F)).
    """
    if hasattr(model, "layer_rows"):
        rows = [LayerRow(*row) for row in model.layer_rows(tuple(input_shape))]
        return _finish(model, input_shape, rows, print_table, console)
    rows = []
    leaves = [
        (name, m)
        for name, m in model.named_modules()
        if name and (not m._modules or m._parameters)
    ]
    originals = {}

    def recording(name, module, forward):
        def wrapped(*args, **kwargs):
            out = forward(*args, **kwargs)
            first = out[0] if isinstance(out, tuple) else out
            own = sum(p.numel() for p in module.parameters(recurse=not bool(module._modules)))
            shape = first.shape[:batch_axis] + first.shape[batch_axis + 1:]
            rows.append(LayerRow(name, type(module).__name__, tuple(shape), int(own)))
            return out

        return wrapped

    for name, module in leaves:
        originals[name] = module.__dict__.get("forward")
        object.__setattr__(module, "forward", recording(name, module, module.forward))
    try:
        shape = tuple(input_shape)
        x = Tensor(np.zeros(shape[:batch_axis] + (1,) + shape[batch_axis:], dtype=dtype or model.dtype))
        # in eval mode: a one-sample batch through BatchNorm, and no dropout draws or running-statistics updates
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            with no_grad():
                model(x)
        finally:
            for m, mode in modes:
                object.__setattr__(m, "training", mode)
    finally:
        for name, module in leaves:
            if originals[name] is None:
                object.__delattr__(module, "forward")
            else:
                object.__setattr__(module, "forward", originals[name])
    return _finish(model, input_shape, rows, print_table, console)


def _finish(model, input_shape, rows, print_table, console):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result = ModelSummary(type(model).__name__, tuple(input_shape), rows, int(total), int(trainable))
    if print_table and (console is not None or not _in_notebook()):
        from rich.console import Console

        (console or Console()).print(result.table())
    return result


def _in_notebook() -> bool:
    """Whether results are shown by an IPython kernel's display hook (a notebook cell shows the
    returned summary itself; printing it too would show the table twice)."""
    import sys

    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Discard:
    def write(self, text):
        return len(text)

    def flush(self):
        pass
