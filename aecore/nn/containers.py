"""ModuleList and ModuleDict: modules held in a list or a dict, registered like attributes.

A plain Python list of layers is invisible to parameters(), state_dict(), .to() and train();
these containers register every module they hold, under its index ("0", "1", ...) or key, so
the state_dict names are PyTorch's: "layers.0.weight", "heads.mu.bias". Neither has a
forward: the owning module decides how to call what they hold.
"""

from collections.abc import Mapping

from .module import Module


def _check_module(module, where):
    if not isinstance(module, Module):
        raise TypeError(f"{where}: expected a Module, got {type(module).__name__}")
    return module


class ModuleList(Module):
    """A list of modules: indexing (negative too, slices give a ModuleList), len, iteration,
    append, extend, insert, and `del` of an index; the names stay 0..len-1 in order."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index):
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"ModuleList: indices must be ints or slices, got "
                            f"{type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"ModuleList: index {index} is out of range for {len(self)} modules")
        return index % len(self)

    def _renumber(self, modules):
        """Register `modules` as the whole list, named 0..len-1."""
        self._modules.clear()
        for position, module in enumerate(modules):
            self._modules[str(position)] = module

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[self._index(index)]

    def __setitem__(self, index, module):
        self._modules[str(self._index(index))] = _check_module(module, "ModuleList")

    def __delitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[self._index(index)]
        self._renumber(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self._modules[str(len(self))] = _check_module(module, "ModuleList.append")
        return self

    def extend(self, modules):
        if isinstance(modules, (Module, Mapping)) or not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleList.extend: expected an iterable of Modules, got "
                            f"{type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Insert before `index` (Python's list.insert rule: past the end appends)."""
        modules = list(self._modules.values())
        modules.insert(index, _check_module(module, "ModuleList.insert"))
        self._renumber(modules)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward: iterate over it in the owning "
                                  "module's forward")


class ModuleDict(Module):
    """A dict of modules by str key, in insertion order: d[key], d[key] = module, del, `in`,
    len, iteration over the keys, keys(), values(), items(), update(), pop(), clear()."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    @staticmethod
    def _key(key):
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be str, got {type(key).__name__}")
        if not key or "." in key:
            raise ValueError(f"ModuleDict: keys must be non-empty and without '.', got {key!r}")
        return key

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self._modules[self._key(key)] = _check_module(module, f"ModuleDict[{key!r}]")

    def __delitem__(self, key):
        del self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        """Add (or replace) from a mapping or an iterable of (key, module) pairs."""
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"ModuleDict.update: expected a mapping or (key, module) "
                                f"pairs, got an element {pair!r}")
            self[pair[0]] = pair[1]

    def pop(self, key):
        return self._modules.pop(key)

    def clear(self):
        self._modules.clear()

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward: index it in the owning module's "
                                  "forward")


