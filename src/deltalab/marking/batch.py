"""Grading a class: one problem, many answers files -> a CSV row and a feedback page each."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

CSV_COLUMNS = ("submission", "student", "score", "max_score", "right", "consistent", "wrong", "missing",
               "first_wrong", "mistakes")


def csv_text(results) -> str:
    """One row per submission: who, score, counts per verdict, first wrong quantity, mistake ids."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        counts = r.counts
        first = r.first_wrong
        writer.writerow([r.source, r.student or "", f"{r.score:g}", f"{r.max_score:g}", counts["right"],
                         counts["consistent"], counts["wrong"], counts["missing"],
                         "" if first is None else first.where, " ".join(r.mistake_ids)])
    return out.getvalue()


def page_names(results, suffix):
    """A file name per submission (the student, else the answers file's name), unique."""
    used, names = set(), []
    for r in results:
        stem = re.sub(r"[^\w.-]+", "_", r.name).strip("._") or "submission"
        name, n = f"{stem}{suffix}", 2
        while name in used:
            name, n = f"{stem}-{n}{suffix}", n + 1
        used.add(name)
        names.append(name)
    return names


def write_feedback(results, directory, format="markdown"):
    """One feedback page per submission in ``directory``; returns the paths written."""
    from ..files import write_text_atomic

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".html" if format == "html" else ".md"
    paths = []
    for result, name in zip(results, page_names(results, suffix)):
        path = directory / name
        write_text_atomic(path, result.render("html" if format == "html" else "markdown"))
        paths.append(path)
    return paths


__all__ = ["CSV_COLUMNS", "csv_text", "page_names", "write_feedback"]
