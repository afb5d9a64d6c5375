"""Feed-forward layers: Linear, Conv2d, pooling, Flatten, Sequential and activations."""
from __future__ import annotations

from collections import OrderedDict

from .. import ops
from ..errors import ConfigurationError, DeltalabError
from ..ops._util import pair
from ..ops.softmax import implicit_dim
from .module import Module, check_device, check_input, uniform_


class Linear(Module):
    """z = x Wᵀ + b; weight (out_features, in_features) like PyTorch (the lecture's z = W x + b)."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = uniform_((out_features, in_features), in_features, dtype)
        self.register_parameter("bias", uniform_((out_features,), in_features, dtype) if bias else None)

    def forward(self, x):
        check_input(self, x, range(1, 64), -1, self.in_features, "in_features")
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def same_padding(kernel_size):
    """Padding that keeps the size at stride 1: (k − 1)/2 per dimension; odd kernels only."""
    kernel = pair(kernel_size, "kernel_size", "same_padding")
    for k in kernel:
        if k % 2 == 0:
            raise ConfigurationError(
                f"'same' padding needs an odd kernel size, got {kernel}: an even kernel k would need "
                f"(k - 1)/2 = {(k - 1) / 2} rows on each side, which is no whole number, so no symmetric "
                "padding keeps the size; give the padding explicitly"
            )
    return tuple((k - 1) // 2 for k in kernel)


class Conv2d(Module):
    """2-D convolution layer on NCHW, like ``torch.nn.Conv2d`` (dilation, groups); ``padding="same"``
    for odd kernels."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if padding_mode != "zeros":
            raise NotImplementedError(f"deltalab has no torch.nn.Conv2d padding_mode={padding_mode!r} (zeros only)")
        if device is not None:
            check_device(device)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.dilation = pair(dilation, "dilation", "Conv2d")
        self.groups = groups
        if padding == "same":
            if self.stride != (1, 1):
                raise ConfigurationError(f"Conv2d: padding='same' needs stride 1, got stride {self.stride}")
            padding = same_padding(tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation)))
        elif padding == "valid":
            padding = 0
        self.padding = pair(padding, "padding", "Conv2d")
        if min(self.stride) < 1 or min(self.padding) < 0 or min(self.kernel_size) < 1 or min(self.dilation) < 1:
            raise ConfigurationError(
                f"Conv2d: need kernel_size >= 1, stride >= 1, dilation >= 1 and padding >= 0, got "
                f"kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}, padding={self.padding}"
            )
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self.weight = uniform_((out_channels, in_channels // groups) + self.kernel_size, fan_in, dtype)
        self.register_parameter("bias", uniform_((out_channels,), fan_in, dtype) if bias else None)

    def forward(self, x):
        check_input(self, x, (3, 4), -3, self.in_channels, "channels")
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        extra = "".join(f", {name}={getattr(self, name)}" for name, plain in (("dilation", (1, 1)), ("groups", 1))
                        if getattr(self, name) != plain)
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}{extra}, bias={self.bias is not None}"
        )


class _Pool(Module):
    function = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", type(self).__name__)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", type(self).__name__)
        self.padding = pair(padding, "padding", type(self).__name__)

    def forward(self, x):
        return type(self).function(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool):
    """Max pooling; the gradient goes to the first maximum of each window, or to its last NaN
    (as PyTorch).  ``return_indices=True``: forward returns (values, indices), as torch."""

    function = staticmethod(ops.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding)
        if pair(dilation, "dilation", "MaxPool2d") != (1, 1):
            raise ConfigurationError(f"MaxPool2d: dilation={dilation} is not supported (only 1)")
        if ceil_mode:
            raise ConfigurationError("MaxPool2d: ceil_mode=True is not supported (output sizes round down)")
        self.return_indices = bool(return_indices)

    def forward(self, x):
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding, return_indices=self.return_indices)


class AvgPool2d(_Pool):
    """Average pooling (padding counts in the divisor, as PyTorch's default)."""

    function = staticmethod(ops.avg_pool2d)


class Flatten(Module):
    """Flatten axes start_dim..end_dim (default: all but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return ops.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Modules applied in order; keys "0", "1", ... (or the names of an OrderedDict)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            items = modules[0].items()
        else:
            items = ((str(i), m) for i, m in enumerate(modules))
        for name, module in items:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: element {name} is a {type(module).__name__}, not a Module")
            setattr(self, name, module)

    def forward(self, x):
        for name, module in self._modules.items():
            try:
                x = module(x)
            except DeltalabError as exc:
                if getattr(exc, "_located", False):
                    raise
                located = type(exc)(f"layer {name} ({type(module).__name__}): {exc}")
                located._located = True
                raise located from None
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Put ``module`` before position ``index`` (the keys are renumbered, as torch)."""
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        size = len(self._modules)
        if not -size <= index <= size:
            raise IndexError(f"Index out of range: {index}")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber_children(modules)
        return self

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def __setitem__(self, index, module):
        key = list(self._modules)[index]  # IndexError out of range, as a list
        setattr(self, key, module)

    def __delitem__(self, index):
        modules = list(self._modules.values())
        del modules[index]
        self._renumber_children(modules)


class _Activation(Module):
    function = None

    def forward(self, x):
        return type(self).function(x)


class ReLU(_Activation):
    function = staticmethod(ops.relu)


class Tanh(_Activation):
    function = staticmethod(ops.tanh)


class Sigmoid(_Activation):
    function = staticmethod(ops.sigmoid)


class Identity(_Activation):
    function = staticmethod(lambda x: x)


class Softmax(Module):
    """softmax along ``dim``; without one, torch's legacy choice (0 for 1- and 3-D inputs, else
    1) with its deprecation warning, as ``torch.nn.Softmax()``."""

    name = "softmax"

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def _dim(self, x):
        return self.dim if self.dim is not None else implicit_dim(x.ndim, self.name, stacklevel=4)

    def forward(self, x):
        return ops.softmax(x, self._dim(x))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    name = "log_softmax"

    def forward(self, x):
        return ops.log_softmax(x, self._dim(x))


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "identity": Identity, "softmax": Softmax}


class ELU(Module):
    """α(eˣ − 1) for x ≤ 0, x otherwise (``torch.nn.ELU``)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return ops.elu(x, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class LeakyReLU(Module):
    """x for x > 0, negative_slope·x otherwise (``torch.nn.LeakyReLU``)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softplus(Module):
    """log(1 + e^(βx))/β, linear where βx > threshold (``torch.nn.Softplus``)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return ops.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class GELU(Module):
    """x·Φ(x), or its tanh approximation with ``approximate='tanh'`` (``torch.nn.GELU``)."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return ops.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"
