"""``type = "max_pool2d"``: the largest value of each window; its delta goes to that maximum."""
from __future__ import annotations

from ... import ops
from .pooling import Pooling
from .worked import max_pool_windows


class MaxPool2d(Pooling):
    name = "max_pool2d"
    order = 30
    short = "max"

    def engine_pool(self, x, kernel, stride, padding):
        return ops.max_pool2d(x, kernel, stride, padding)

    def torch_pool(self, torch):
        return torch.nn.functional.max_pool2d

    def annotate(self, d, l, spec, input_id, batched):
        """Each window's winner, on x[l] and on the delta routed back to the input."""
        output_id = f"forward:x[{l}]"
        windows = max_pool_windows(d[input_id].value, d[output_id].value, tuple(spec["kernel_size"]),
                                   tuple(spec["stride"]), tuple(spec["padding"]))
        d.annotate(output_id, windows=windows)
        routed = "deltas:" + input_id.partition(":")[2]
        if routed in d and getattr(d[routed].formula, "name", None) == "pool_route":
            d.annotate(routed, windows=windows)


KIND = MaxPool2d()
