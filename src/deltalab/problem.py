"""Problem files, as earlier code imports them: see :mod:`deltalab.problems` (the reader, the
problem kinds and the layer registry live there)."""
from .problems.file import MAX_FILE_SIZE, NetworkSize, Problem, load_problem, parse_problem, tomllib

__all__ = ["MAX_FILE_SIZE", "NetworkSize", "Problem", "load_problem", "parse_problem", "tomllib"]
