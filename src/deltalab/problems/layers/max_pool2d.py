"""``type = "max_pool2d"``: the largest value of each window; its delta goes to that maximum."""
from __future__ import annotations

from ... import ops
from .pooling import Pooling


class MaxPool2d(Pooling):
    name = "max_pool2d"
    order = 30
    short = "max"

    def engine_pool(self, x, kernel, stride, padding):
        return ops.max_pool2d(x, kernel, stride, padding)

    def torch_pool(self, torch):
        return torch.nn.functional.max_pool2d


KIND = MaxPool2d()
