"""``deltalab train TASK``: train a built-in task with a progress bar, checkpoints and plots."""
from __future__ import annotations

import shutil
import sys
import textwrap


def register(subparsers):
    from ..training import BASE_DEFAULTS, OPTIMIZERS, SCHEDULES, TASKS

    tasks = ", ".join(sorted(TASKS))
    p = subparsers.add_parser(
        "train", help=f"train a task ({tasks}) with progress, checkpoints, plots and report.html",
        description="Train a built-in task, or a problem file with 'deltalab train file PROBLEM.toml'. "
                    "Options left out take the task's defaults.",
    )
    p.add_argument("task", help=f"the task to train: {tasks}")
    p.add_argument("problem", nargs="?", help="the problem file (TOML) of the 'file' task")
    p.add_argument("--epochs", type=int, help=f"number of epochs (default: the task's, else {BASE_DEFAULTS['epochs']}); "
                                              "for 'file' one epoch is one SGD step on the whole batch")
    p.add_argument("--batch-size", type=int, help="mini-batch size (default: the task's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the task's; for 'file' the problem's)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd or adam (default: the task's)")
    p.add_argument("--momentum", type=float, help="momentum of sgd (default: the task's, else 0.9)")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule over the epochs (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffling (default 0)")
    p.add_argument("--dtype", choices=("float32", "float64"),
                   help="float type (default: the task's; float32 for digits-cnn and sequence-completion)")
    p.add_argument("--limit", type=int, help="train on the first N training samples only (quick runs)")
    p.add_argument("--out", metavar="DIR", help="directory for everything the run writes (default runs/TASK-TIMESTAMP)")
    p.add_argument("--plots", action="store_true",
                   help="draw curves, kernels, feature maps, hidden states (needs matplotlib)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint.npz of an earlier run")
    p.add_argument("--quiet", action="store_true", help="no progress bars, only the final metrics line")
    p.set_defaults(run=run)


def check_ranges(args):
    """Upper bounds of the numeric options, and the range of --seed, before anything starts."""
    from .. import limits
    from ..errors import ConfigurationError

    if not 0 <= args.seed <= limits.SEED:
        raise ConfigurationError(f"train: --seed must be an integer from 0 to {limits.SEED:,}, got {args.seed:,}")
    for option, value, largest in (("--epochs", args.epochs, limits.EPOCHS), ("--batch-size", args.batch_size, limits.COUNT),
                                   ("--limit", args.limit, limits.COUNT)):
        if value is not None and value > largest:
            raise ConfigurationError(f"train: {option} {value:,} is too large; the largest is {largest:,}")


def run(args):
    from ..training import TrainingDiverged, make_config, train

    check_ranges(args)
    config = make_config(
        args.task, problem=args.problem, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, momentum=args.momentum, schedule=args.schedule, seed=args.seed, dtype=args.dtype,
        limit=args.limit,
    )
    try:
        result = train(config, out_dir=args.out, plots=args.plots, resume=args.resume, progress=not args.quiet)
    except TrainingDiverged as exc:
        print(f"deltalab: error: {exc}", file=sys.stderr)
        return 1
    width = shutil.get_terminal_size((80, 24)).columns  # COLUMNS when set; 80 when piped
    print("\n".join(fitted(result.metrics_line(), width)))
    print("\n".join(textwrap.wrap(f"wrote {', '.join(result.files)}", width, subsequent_indent="  ",
                                   break_long_words=False, break_on_hyphens=False)))
    return 0


def fitted(line: str, width: int) -> list:
    """A summary line of fields separated by two spaces ("epoch 3/3  test accuracy 97.0 %  …")
    as lines of at most ``width`` characters, broken between fields, never inside one."""
    out = []
    for field in line.split("  "):
        if out and len(out[-1]) + 2 + len(field) <= width:
            out[-1] += "  " + field
        else:
            out.append(field if not out else "  " + field)
    return out
