"""What max and average pooling share: a window over each channel, no parameters; backward
routes each window's delta to its maximum (max) or spreads it evenly (average)."""
from __future__ import annotations

from ...derivation.expressions import op
from .base import LayerCount, WindowLayer


class Pooling(WindowLayer):
    keys = ("type", "kernel_size", "stride", "padding")
    short = ""  # "max" | "avg": the derivation's name of the window function

    def read(self, layer, spec, where, reader):
        spec.kernel_size = reader.pair(layer.get("kernel_size"), f"{where}.kernel_size")
        spec.stride = reader.pair(layer.get("stride", list(spec.kernel_size)), f"{where}.stride")
        spec.padding = reader.pair(layer.get("padding", 0), f"{where}.padding")
        self.check_window(spec, where, reader)

    def count(self, spec, shape, batch, where, reader):
        if len(shape) != 3:
            return None
        kernel, stride, padding = spec["kernel_size"], spec["stride"], spec["padding"]
        if any(2 * p > k for p, k in zip(padding, kernel)):
            reader.fail(f"{where}.padding", f"padding {list(padding)} must be at most half the kernel size "
                                            f"{list(kernel)} (otherwise a window could hold only padding)")
        out = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(shape[1:], kernel, stride, padding))
        if min(out) < 1:
            return None
        return LayerCount((shape[0],) + out, 0, batch * shape[0] * out[0] * out[1] * kernel[0] * kernel[1])

    def build(self, l, spec, shape):
        return (shape[0],) + self.window_shape(l, shape, spec), {}

    def forward(self, spec, x, weight, bias):
        return None, self.engine_pool(x, tuple(spec["kernel_size"]), tuple(spec["stride"]), tuple(spec["padding"]))

    def torch_forward(self, torch, spec, x, weight, bias):
        return None, self.torch_pool(torch)(x, spec["kernel_size"], spec["stride"], spec["padding"])

    def describe(self, l, spec, shape_text):
        return f"layer {l}: {self.name}{self.window_text(spec)} → {shape_text}", [f"x[{l}] = {self.name}(x[{l - 1}])"]

    def derive_output(self, spec, x, shape):
        return op("pool", x, kind=self.short, **self.window_options(spec))

    def derive_input_delta(self, spec, l, x_in, upstream, weight, input_shape, batched):
        return op("pool_route", x_in, upstream, kind=self.short, **self.window_options(spec))

    def engine_pool(self, x, kernel, stride, padding):
        raise NotImplementedError

    def torch_pool(self, torch):
        raise NotImplementedError
