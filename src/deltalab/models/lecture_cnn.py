"""The convolution networks of the lecture's shape and parameter exercises."""
from __future__ import annotations

from .. import nn


def _conv_pool_28():
    """28×28×3 → conv 8@5×5 same → max-pool 4×4 stride 2: 608 parameters, 8×13×13."""
    return nn.Sequential(nn.Conv2d(3, 8, 5, padding="same"), nn.MaxPool2d(4, stride=2)), (3, 28, 28)


def _two_conv_10():
    """10×10×1 → conv 8@5×5 same → conv 12@3×3 same: 208 + 876 = 1084 parameters, 12×10×10."""
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding="same"), nn.Conv2d(8, 12, 3, padding="same")), (1, 10, 10)


def _dense_10():
    """(10×10×1) → fully connected → (10×10×5): 50,000 weights + 500 biases = 50,500."""
    return nn.Sequential(nn.Flatten(), nn.Linear(100, 500)), (1, 10, 10)


def _conv_10():
    """(10×10×1) → conv 5@3×3×1 same → 5×10×10: 45 weights + 5 biases = 50."""
    return nn.Sequential(nn.Conv2d(1, 5, 3, padding="same")), (1, 10, 10)


def _feature_detectors():
    """6×6 image, ring and centre kernels, padding 1, no bias, then max-pool 2×2."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.MaxPool2d(2)), (1, 6, 6)


LECTURE_CNNS = {
    "conv-pool-28x28x3": _conv_pool_28,
    "two-conv-10x10": _two_conv_10,
    "dense-10x10-to-10x10x5": _dense_10,
    "conv-10x10-to-10x10x5": _conv_10,
    "feature-detectors-6x6": _feature_detectors,
}


def lecture_cnn(name):
    """(model, input_shape) of a named lecture CNN; see ``LECTURE_CNNS``."""
    try:
        return LECTURE_CNNS[name]()
    except KeyError:
        raise KeyError(f"unknown lecture CNN {name!r}; choose from {', '.join(LECTURE_CNNS)}") from None
