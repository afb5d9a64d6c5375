"""``import deltalab.nn.functional as F``: this name is :mod:`deltalab.functional` itself (one
module under both names, as torch's ``torch.nn.functional``), not a copy."""
import sys

from .. import functional

sys.modules[__name__] = functional  # the import statement hands out what sys.modules holds after this file ran
