"""Problem files, as earlier code imports them: see :mod:`deltalab.problems` (the reader, the
problem kinds and the layer registry live there)."""
from .problems.file import MAX_FILE_SIZE, NetworkSize, Problem, load_problem, parse_problem, tomllib
from .problems.layers import LAYER_TYPES, LayerSpec

__all__ = ["LAYER_TYPES", "MAX_FILE_SIZE", "LayerSpec", "NetworkSize", "Problem", "load_problem", "parse_problem",
           "tomllib"]
