"""``deltalab.func``, named as ``torch.func``: only :func:`functional_call` (torch's vmap, grad and
jacrev are missing by name)."""
from .errors import missing_torch_names
from .nn.module import functional_call

__getattr__ = missing_torch_names(__name__, "torch.func")

__all__ = ["functional_call"]
