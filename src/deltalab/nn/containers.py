"""ModuleList and ModuleDict: hold submodules so their parameters are found, as ``torch.nn``."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from .module import Module


class ModuleList(Module):
    """A list of modules registered under the keys "0", "1", ...; it has no forward."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index):
        size = len(self._modules)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range")
        return index % size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return list(self._modules.values())[self._index(index)]

    def __setitem__(self, index, module):
        setattr(self, str(self._index(index)), module)

    def __delitem__(self, index):
        kept = list(self._modules.values())
        del kept[index if isinstance(index, slice) else self._index(index)]
        self._renumber_children(kept)  # torch renumbers the keys to stay 0..n-1

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        kept = list(self._modules.values())
        kept.insert(index, module)
        self._renumber_children(kept)

    def pop(self, index=-1):
        module = self[index]
        del self[index]
        return module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it and call its modules")


class ModuleDict(Module):
    """An ordered mapping of names to modules, registered under those names; it has no forward."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]
        object.__delattr__(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def clear(self):
        for key in list(self._modules):
            del self[key]

    def update(self, modules):
        if isinstance(modules, (OrderedDict, ModuleDict, Mapping)):
            pairs = modules.items()
        else:
            pairs = []
            for i, pair in enumerate(modules):
                if len(pair) != 2:
                    raise ValueError(f"ModuleDict update sequence element #{i} has length {len(pair)}; 2 is required")
                pairs.append(pair)
        for key, module in pairs:
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(); index it by name and call its modules")
