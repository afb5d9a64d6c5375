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

from .files import write_text_atomic

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


def render_train_report(result, input_shape, images):
    from .summary import summary

    config, last = result.config, result.final
    parts = [f"<h1>deltalab train {html.escape(config.task)}</h1>"]
    parts.append("<h2>Result</h2>")
    parts.append(_table(["metric", "value"], [
        ["test accuracy", f"{last.test_accuracy:.2%}"],
        ["test loss", f"{last.test_loss:.4f}"],
        ["training accuracy (last epoch)", f"{last.train_accuracy:.2%}"],
        ["training loss (last epoch)", f"{last.train_loss:.4f}"],
        ["epochs", f"{last.epoch}/{config.epochs}"],
        ["time (this run)", f"{result.seconds:.1f} s"],
    ]))
    parts.append("<h2>Settings</h2>")
    parts.append(_table(["setting", "value"], [[k, v] for k, v in asdict(config).items()]))
    parts.append("<h2>Model</h2>")
    table = summary(result.model, input_shape, print_table=False)
    parts.append(f"<pre>{html.escape(str(table))}</pre>")
    parts.append("<h2>Per epoch</h2>")
    parts.append(_table(
        ["epoch", "learning rate", "train loss", "train accuracy", "test loss", "test accuracy", "seconds"],
        [[r.epoch, f"{r.lr:.3g}", f"{r.train_loss:.4f}", f"{r.train_accuracy:.2%}", f"{r.test_loss:.4f}",
          f"{r.test_accuracy:.2%}", f"{r.seconds:.2f}"] for r in result.history],
    ))
    if images:
        parts.append("<h2>Plots</h2>")
        parts += [embedded_image(path, caption) for caption, path in images.items()]
    else:
        parts.append("<p>No plots: run with <code>--plots</code> to draw them.</p>")
    return html_page(f"deltalab train {config.task}", "\n".join(parts))


def write_train_report(result, input_shape, images):
    """Write ``report.html`` into the run's directory; returns its path."""
    path = os.path.join(result.out_dir, "report.html")
    write_text_atomic(path, render_train_report(result, input_shape, images))
    return path
