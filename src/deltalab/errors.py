"""The error types deltalab raises for user mistakes.

Every user-facing mistake (a wrong shape, an impossible layer configuration, a malformed
file) is one of these, so the command line can print one clear line instead of a traceback.
The command line exits with ``exit_code``: 2 for bad input, 1 for a valid run whose result
is not a finite number.
"""


class DeltalabError(Exception):
    """Base class of every error deltalab raises on purpose."""

    exit_code = 2


class ShapeError(DeltalabError, ValueError, RuntimeError):
    """Operands or layer inputs whose shapes do not fit; the message names the op and shapes.

    A RuntimeError too, because PyTorch raises RuntimeError for the same mistakes."""


class IndexOutOfRange(ShapeError, IndexError):
    """An index past the end of a dim (an IndexError, as in PyTorch)."""


class ConfigurationError(DeltalabError, ValueError):
    """An impossible layer or op configuration (stride 0, kernel larger than its input, ...)."""


class CheckpointError(DeltalabError, ValueError):
    """A checkpoint that is missing, corrupt, truncated or for another architecture."""


class SpecError(DeltalabError, ValueError):
    """A problem file that cannot be read; the message names the file and field."""


class ClassIndexError(ShapeError, IndexError):
    """A class index outside 0..C−1; an IndexError too, as PyTorch's "Target 3 is out of bounds"."""


class OutputError(DeltalabError, OSError):
    """A file that cannot be written (refused target, permission, full disk); the message names it."""


class NonFiniteResult(DeltalabError, ArithmeticError):
    """A valid problem whose run produced inf or nan (an overflow, a diverging step): exit code 1."""

    exit_code = 1


class MissingTorchFeature(NotImplementedError, AttributeError):
    """A torch name deltalab does not have; an AttributeError too, so ``hasattr`` stays False."""


def missing_torch_names(module_name, torch_name):
    """A module ``__getattr__`` raising ``MissingTorchFeature`` (a NotImplementedError naming the
    feature, an AttributeError for ``hasattr``) for public names the module lacks; ``torch_name``
    is the torch namespace it mirrors, e.g. "torch.nn"."""

    def __getattr__(name):
        if name.startswith("_"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        raise MissingTorchFeature(f"deltalab has no {torch_name}.{name}")

    return __getattr__
