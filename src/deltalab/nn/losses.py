"""Loss modules wrapping the functional losses (``nn.CrossEntropyLoss()(logits, target)``)."""
from __future__ import annotations

from .. import losses
from .module import Module


class _Loss(Module):
    function = None
    default_reduction = "mean"

    def __init__(self, reduction=None):
        super().__init__()
        self.reduction = reduction or self.default_reduction

    def forward(self, prediction, target):
        return type(self).function(prediction, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class HalfSquaredError(_Loss):
    function = staticmethod(losses.half_squared_error)
    default_reduction = "sum"


class SquaredError(_Loss):
    function = staticmethod(losses.squared_error)
    default_reduction = "sum"


class MSELoss(_Loss):
    function = staticmethod(losses.mse_loss)


class CrossEntropyLoss(_Loss):
    function = staticmethod(losses.cross_entropy)


class NLLLoss(_Loss):
    function = staticmethod(losses.nll_loss)


class BCELoss(_Loss):
    function = staticmethod(losses.binary_cross_entropy)
