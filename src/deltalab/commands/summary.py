"""``deltalab summary [NAME]``: shape and parameter tables of the lecture's CNN examples."""
from __future__ import annotations

from ..errors import DeltalabError


def register(subparsers):
    p = subparsers.add_parser("summary", help="layer/shape/parameter table of a problem file or a lecture CNN")
    p.add_argument("name", nargs="?", help="a problem file (.toml), a built-in lecture CNN (default: all of them)")
    p.set_defaults(run=run)


def run(args):
    from rich.console import Console

    from ..models import LECTURE_CNNS, lecture_cnn
    from ..summary import summary

    console = Console()
    if args.name and (args.name.endswith(".toml") or "/" in args.name):
        return _problem_summary(args.name, console)
    names = [args.name] if args.name else list(LECTURE_CNNS)
    for name in names:
        if name not in LECTURE_CNNS:
            raise DeltalabError(f"summary: unknown example {name!r}; choose from {', '.join(LECTURE_CNNS)}")
        model, input_shape = lecture_cnn(name)
        result = summary(model, input_shape, print_table=False)
        console.print(result.table(title=f"{name}  (input {'×'.join(map(str, input_shape))})"))
    return 0


def _problem_summary(path, console):
    from ..problem import load_problem
    from ..solve import build_model
    from ..summary import summary

    problem = load_problem(path)
    model = build_model(problem)
    if problem.model_type in ("rnn", "lstm"):
        input_shape = (problem.inputs.shape[0], problem.input_size)
    else:
        input_shape = problem.input_shape
    result = summary(model, input_shape, print_table=False)
    console.print(result.table(title=f"{problem.title}  (input {'×'.join(map(str, input_shape))})"))
    return 0
