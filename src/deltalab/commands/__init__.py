"""Subcommands of the ``deltalab`` CLI, one module each with ``register(subparsers)``.

Each module's ``register`` adds its parser and sets ``run=function(args) -> exit code``.
Heavy imports stay inside the run functions so ``deltalab --help`` starts fast.
"""

COMMANDS = ["summary", "solve", "examples", "train", "check", "generate"]
