"""``type = "avg_pool2d"``: the mean of each window; its delta is spread evenly over the window."""
from __future__ import annotations

from ... import ops
from .pooling import Pooling


class AvgPool2d(Pooling):
    name = "avg_pool2d"
    order = 40
    short = "avg"

    def engine_pool(self, x, kernel, stride, padding):
        return ops.avg_pool2d(x, kernel, stride, padding)

    def torch_pool(self, torch):
        return torch.nn.functional.avg_pool2d


KIND = AvgPool2d()
