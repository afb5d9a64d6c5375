"""The differentiable operations of the engine: primitives and fused kernels."""
from .activation import elu, gelu, leaky_relu, softplus
from .conv import conv2d, output_size
from .dropout import dropout
from .embedding import embedding
from .gru import gru_sequence
from .normalization import batch_norm
from .elementwise import add, cast, div, exp, log, mul, neg, pow, relu, sigmoid, sub, tanh, where
from .linear import linear, matmul
from .pooling import avg_pool2d, max_pool2d
from .reduction import max, mean, sum
from .shape import cat, concatenate, flatten, getitem, pad, reshape, squeeze, stack, transpose, unsqueeze
from .softmax import log_softmax, softmax

__all__ = [
    "add", "avg_pool2d", "batch_norm", "dropout", "elu", "embedding", "gelu", "gru_sequence", "leaky_relu",
    "softplus", "cast", "cat", "concatenate", "conv2d", "div", "exp", "flatten", "getitem",
    "linear", "log", "log_softmax", "matmul", "max", "max_pool2d", "mean", "mul", "neg", "output_size",
    "pad", "pow", "relu", "reshape", "sigmoid", "softmax", "squeeze", "stack", "sub", "sum", "tanh",
    "transpose", "unsqueeze", "where",
]
