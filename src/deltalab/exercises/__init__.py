"""``deltalab generate``: exercise variants with hand-friendly numbers, their sheets and keys.

A template (:mod:`.template`) is a problem file whose numbers may be draws, plus a
``[generate]`` table of constraints (:mod:`.constraints`) and the quantities to ask.  Each
draw is resolved into a plain problem file, solved, and kept only if every constraint holds
on its derivation record (:mod:`.engine`); the kept variants are written as problem files,
sheets, keys, answers files, a Moodle quiz and a stress report (:mod:`.documents`); with a
mistake of ``deltalab check``'s library planted, as "find the error" solutions (:mod:`.planting`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from .engine import Generation, GenerationError, generate_variants
from .template import Template, load_template, parse_template

FORMATS = {"markdown": "md", "latex": "tex", "html": "html"}
TEMPLATES = Path(__file__).resolve().parent.parent / "examples" / "templates"


def template_names() -> list:
    return sorted(p.stem for p in TEMPLATES.glob("*.toml"))


def template_path(name) -> Path:
    path = TEMPLATES / f"{name}.toml"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(name, template_names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"--example: no built-in template {name!r}{hint} (they are: {', '.join(template_names())})")
    return path


@dataclass
class Exercises:
    """What :func:`generate` made: the variants and every file's text by its name in DIR."""

    generation: Generation
    files: dict = field(default_factory=dict)  # relative path -> text
    stress: dict | None = None

    @property
    def variants(self):
        return self.generation.variants

    def write(self, out) -> list:
        """Write every file under ``out`` (each one atomically); returns the paths written."""
        from ..files import write_text_atomic

        out = Path(out)
        if out.exists() and not out.is_dir():
            raise SpecError(f"--out: {out} exists and is not a folder")
        written = []
        for name, text in self.files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text)
            written.append(path)
        return written


def generate(template, variants=10, seed=0, out=None, formats=tuple(FORMATS), moodle=False, stress=False,
             plant_mistake=None) -> Exercises:
    """``variants`` exercise variants of ``template`` (a path, a built-in template's name or a
    :class:`Template`) drawn from ``seed``; written to ``out`` when given.

    Files: ``variant-01.toml`` …, ``sheet.md|tex|html`` and ``key.md|tex|html`` (``formats``),
    ``answers/variant-01.toml`` …, with ``moodle`` ``quiz.xml``, with ``stress``
    ``stress.json``; with ``plant_mistake`` (an id of ``deltalab check``'s mistake library) the
    sheets show each variant's worked solution with that mistake planted ("find the error"),
    the keys say where it is and correct it, and ``planted/variant-01.toml`` … hold those
    solutions as answers files.  The same template and seed give byte-identical files.
    """
    from . import documents

    mistake = None
    if plant_mistake is not None:
        from .planting import mistake_named

        mistake = mistake_named(plant_mistake)
    if not isinstance(template, Template):
        path = Path(template)
        template = load_template(path if path.suffix == ".toml" or path.exists() else template_path(str(template)))
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"--seed: expected a non-negative integer, got {seed!r}")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise SpecError(f"--format: unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    generation = generate_variants(template, variants, seed, mistake)
    result = Exercises(generation)
    files = result.files
    for v in generation.variants:
        files[f"{v.name}.toml"] = v.text
    for fmt in formats:
        ext = FORMATS[fmt]
        writer = {"markdown": documents.sheet_markdown, "latex": documents.sheet_latex,
                  "html": documents.sheet_html}[fmt]
        files[f"sheet.{ext}"] = writer(generation, answers=False)
        files[f"key.{ext}"] = writer(generation, answers=True)
    for v in generation.variants:
        files[f"answers/{v.name}.toml"] = documents.answers_toml(generation, v)
    for v in generation.variants:
        if v.planted is not None:
            files[f"planted/{v.name}.toml"] = v.planted.text
    if moodle:
        files["quiz.xml"] = documents.moodle_xml(generation)
    if stress:
        result.stress = documents.stress_report(generation)
        files["stress.json"] = documents.stress_json(result.stress)
    if out is not None:
        result.write(out)
    return result


__all__ = ["Exercises", "GenerationError", "Template", "generate", "load_template", "parse_template",
           "template_names", "template_path"]
