"""``deltalab train TASK``: train a built-in task with a progress bar, checkpoints and plots."""
from __future__ import annotations

import sys


def register(subparsers):
    from ..training import BASE_DEFAULTS, OPTIMIZERS, SCHEDULES

    p = subparsers.add_parser(
        "train", help="train a built-in task (digits-cnn, ...) with progress, checkpoints, plots and report.html",
        description="Train a built-in task. Options left out take the task's defaults.",
    )
    p.add_argument("task", help="the task to train (e.g. digits-cnn)")
    p.add_argument("--epochs", type=int, help=f"number of epochs (default: the task's, else {BASE_DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=int, help="mini-batch size (default: the task's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the task's)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd (momentum 0.9) or adam (default: the task's)")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule over the epochs (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffling (default 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="float type (default float32)")
    p.add_argument("--limit", type=int, help="train on the first N training samples only (quick runs)")
    p.add_argument("--out", metavar="DIR", help="directory for everything the run writes (default runs/TASK-TIMESTAMP)")
    p.add_argument("--plots", action="store_true", help="draw curves, kernels and feature maps (needs matplotlib)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint.npz of an earlier run")
    p.add_argument("--quiet", action="store_true", help="no progress bars, only the final metrics line")
    p.set_defaults(run=run)


def run(args):
    from ..training import TrainingDiverged, make_config, train

    config = make_config(
        args.task, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        schedule=args.schedule, seed=args.seed, dtype=args.dtype, limit=args.limit,
    )
    try:
        result = train(config, out_dir=args.out, plots=args.plots, resume=args.resume, progress=not args.quiet)
    except TrainingDiverged as exc:
        print(f"deltalab: error: {exc}", file=sys.stderr)
        return 1
    print(result.metrics_line())
    print(f"wrote {', '.join(result.files)}")
    return 0
