"""The built-in training tasks, one module each; importing a module registers its task(s)."""
from . import digits_cnn, problem_file, sequence_completion, shift_register  # noqa: F401  (they register)
