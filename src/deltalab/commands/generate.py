"""``deltalab generate TEMPLATE --variants N --out DIR``: exercise variants, sheets and keys."""
from __future__ import annotations

import sys

FORMATS = ("markdown", "latex", "html")


def register(subparsers):
    p = subparsers.add_parser("generate", help="write exercise variants with hand-friendly numbers, "
                                               "their sheets, keys, answers files and a Moodle quiz")
    source = p.add_mutually_exclusive_group()
    source.add_argument("template", nargs="?", help="template file (a problem file with draws and a [generate] table)")
    source.add_argument("--example", metavar="NAME", help="a built-in template (the lecture's exercises)")
    p.add_argument("--variants", type=int, default=10, metavar="N", help="number of variants (default 10)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the draws (default 0)")
    p.add_argument("--out", metavar="DIR", help="folder to write to (required unless --list)")
    p.add_argument("--format", action="append", choices=FORMATS, metavar="FORMAT",
                   help="sheet and key format: markdown, latex or html (repeatable; default: all three)")
    p.add_argument("--moodle", action="store_true", help="also write quiz.xml (Moodle XML, one cloze question per variant)")
    p.add_argument("--stress", action="store_true",
                   help="also write stress.json and print a summary (tries, rejections, ranges)")
    p.add_argument("--list", action="store_true", help="list the built-in templates and exit")
    p.add_argument("--plant-mistake", metavar="ID",
                   help="'find the error': each variant's worked solution with this mistake of `deltalab check`'s "
                        "library planted (sheets show it, keys correct it, planted/ holds it as answers files)")
    p.set_defaults(run=run)


def run(args):
    from ..errors import DeltalabError
    from ..exercises import generate, template_names, template_path

    if args.list:
        from ..exercises import load_template

        for name in template_names():
            print(f"{name:28s} {load_template(template_path(name)).title}")
        return 0
    if not args.example and not args.template:
        raise DeltalabError("generate: give a template file or --example NAME (see `deltalab generate --list`)")
    if not args.out:
        raise DeltalabError("--out: give the folder to write the variants to")
    template = template_path(args.example) if args.example else args.template
    result = generate(template, variants=args.variants, seed=args.seed, out=args.out,
                      formats=tuple(args.format or FORMATS), moodle=args.moodle, stress=args.stress,
                      plant_mistake=args.plant_mistake)
    print(f"wrote {len(result.variants)} variants and {len(result.files) - len(result.variants)} more files to {args.out}")
    if result.stress is not None:
        from ..exercises.documents import stress_summary

        sys.stdout.write(stress_summary(result.stress))
    return 0
