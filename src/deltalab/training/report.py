"""``report.html`` of a training run: one self-contained page a teacher can share.

Plots are embedded as base64 PNG ``data:`` URIs; the page has inline CSS only, no scripts
and no external resources.  It shows the settings, the final metrics, the per-epoch table,
the model summary and the plots.
"""
from __future__ import annotations

import base64
import html
import os
from dataclasses import asdict

from ..files import write_text_atomic
from .metrics import percent

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td.name, th.name { text-align: left; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; }
figcaption { font-style: italic; color: #555; }
"""


def _table(header, rows, name_columns=1):
    cells = ["<table>", "<thead><tr>"]
    cells += [f'<th{" class=name" if i < name_columns else ""}>{html.escape(str(h))}</th>' for i, h in enumerate(header)]
    cells.append("</tr></thead><tbody>")
    for row in rows:
        cells.append("<tr>" + "".join(
            f'<td{" class=name" if i < name_columns else ""}>{html.escape(str(v))}</td>' for i, v in enumerate(row)
        ) + "</tr>")
    cells.append("</tbody></table>")
    return "".join(cells)


def embedded_image(path, caption):
    with open(path, "rb") as f:
        encoded = base64.b64encode(f.read()).decode("ascii")
    alt = html.escape(caption, quote=True)
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{alt}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def html_page(title, body):
    """A complete HTML5 page around ``body`` (already HTML) with the inline style sheet."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def settings(config) -> list:
    """[setting, value] rows of a run: only the settings it used (no "limit None", no momentum
    under Adam, which has none)."""
    rows = []
    for key, value in asdict(config).items():
        if value is None or (key == "momentum" and config.optimizer != "sgd"):
            continue
        rows.append([key, value])
    return rows


def render_train_report(result, input_shape, images):
    from ..summary import summary

    config, last = result.config, result.final
    held_out = result.task is None or result.task.held_out
    evaluated = "test" if held_out else "after the last epoch"
    parts = [f"<h1>deltalab train {html.escape(config.task)}</h1>"]
    if result.task is not None:
        parts.append(f"<p>{html.escape(result.task.description)}</p>")
    parts.append("<h2>Result</h2>")
    rows = [[f"{name}" , value] for name, value in result.task_metrics().items()] if result.task is not None else []
    parts.append(_table(["metric", "value"], rows + [
        [f"accuracy ({evaluated})", percent(last.test_accuracy)],
        [f"loss ({evaluated})", f"{last.test_loss:.4f}"],
        ["training accuracy (mean over the last epoch)", percent(last.train_accuracy)],
        ["training loss (mean over the last epoch)", f"{last.train_loss:.4f}"],
        ["epochs", f"{last.epoch}/{config.epochs}"],
        ["time (this run)", f"{result.seconds:.1f} s"],
    ]))
    parts.append("<h2>Settings</h2>")
    parts.append(_table(["setting", "value"], settings(config)))
    parts.append("<h2>Model</h2>")
    try:
        table = str(summary(result.model, input_shape, print_table=False))
    except Exception:  # noqa: BLE001 - a model the summary cannot run (a custom cell) is shown as its repr
        table = repr(result.model)
    parts.append(f"<pre>{html.escape(table)}</pre>")
    if images:  # the pictures first, the table of every epoch after them
        parts.append("<h2>Plots</h2>")
        parts += [embedded_image(path, caption) for caption, path in images.items()]
    else:
        parts.append("<p>No plots: run with <code>--plots</code> to draw them.</p>")
    parts.append("<h2>Per epoch</h2>")
    after = "test" if held_out else "after"
    samples = result.task is not None and result.task.sample_name
    parts.append(_table(
        ["epoch", "learning rate", "train loss", "train accuracy", f"{after} loss", f"{after} accuracy"]
        + ([f"{result.task.sample_name} right"] if samples else []) + ["seconds"],
        [[r.epoch, f"{r.lr:.3g}", f"{r.train_loss:.4f}", percent(r.train_accuracy), f"{r.test_loss:.4f}",
          percent(r.test_accuracy)] + ([f"{r.test_samples_right}/{r.test_samples}"] if samples else [])
         + [f"{r.seconds:.2f}"] for r in result.history],
    ))
    return html_page(f"deltalab train {config.task}", "\n".join(parts))


def write_train_report(result, input_shape, images):
    """Write ``report.html`` into the run's directory; returns its path."""
    path = os.path.join(result.out_dir, "report.html")
    write_text_atomic(path, render_train_report(result, input_shape, images))
    return path
