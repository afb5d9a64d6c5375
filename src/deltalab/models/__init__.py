"""Ready-made networks: the lecture's CNN examples (and, later, its recurrent models)."""
from .lecture_cnn import LECTURE_CNNS, lecture_cnn

__all__ = ["LECTURE_CNNS", "lecture_cnn"]
