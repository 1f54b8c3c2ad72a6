"""The one description of each kernel op, read by everything else.

Each op family module describes its kernels once, right below its docstring:

    FAMILY = describe(Family(
        "max_pool2d",
        ops=(Op("max_pool2d_forward", (Arg("x", "input"),), cost=forward_cost), ...),
        geometry=geometry.max_pool2d_arrays,
        inputs=bench_and_test_inputs, sample={"x": (2, 3, 5, 5), ...},
        torch=torch_counterpart))

and every other part of the engine reads that description instead of restating the op:
- the registry checks each call's arrays against `Op.args` and the family's `geometry`;
- the profiler counts FLOPs and bytes with `Op.cost`;
- the tests and benchmarks build arguments for every op with `Family.inputs` (`sample`: the
  parameters of one small valid call; the benchmarks pass their own layer shapes);
- bench/ times PyTorch's counterpart of the op with `Family.torch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

__all__ = ["Arg", "Op", "Family", "describe", "op", "family_of", "geometry_of", "families"]


@dataclass(frozen=True)
class Arg:
    """One array argument of a kernel op."""
    name: str
    shape: str              # a role of the family's geometry ("input", "weight", "output", ...),
                            # "4-D", "any", or the name of an earlier argument it must match
    optional: bool = False  # None is accepted too (a missing bias)
    indices: bool = False   # int64 indices (max-pool's argmax), not the call's float dtype


@dataclass(frozen=True)
class Op:
    """One kernel op: its registered name, its array arguments (the geometry, when the family
    has one, comes after them), and its cost.

    cost(geom, shapes, itemsize) -> (flops, bytes moved): one multiply-add is 2 FLOPs, a
    comparison or a max 1; bytes count every array the op must read or write, once.
    """
    name: str
    args: Tuple[Arg, ...]
    cost: Callable
    takes_geometry: bool = True     # False: no geometry argument (conv2d_backward_bias)


@dataclass(frozen=True)
class Family:
    """The ops of one family and what builds their arguments.

    geometry: geom -> {role: shape} (the geometry module's `*_arrays`), or None for ops that
              take no geometry (relu).
    inputs:   (params, dtype, rng) -> (geom, {op name: args}); params are the family's own
              (e.g. {"x": (N, C, H, W), "kernel_size": 2, "stride": 2, "padding": "same"}).
    sample:   the params of one small valid call, for the tests.
    torch:    (torch, op name, args) -> a no-argument callable running PyTorch's counterpart
              on torch tensors of `args` (same device), or None where PyTorch has none.
    """
    name: str
    ops: Tuple[Op, ...]
    geometry: Optional[Callable]
    inputs: Callable
    sample: dict
    torch: Optional[Callable] = None

    @property
    def names(self):
        return tuple(o.name for o in self.ops)


_families = {}   # family name -> Family
_ops = {}        # op name -> (Op, Family)


def describe(family: Family) -> Family:
    """Record a family's description (each family module calls this once); returns it."""
    _families[family.name] = family
    for o in family.ops:
        _ops[o.name] = (o, family)
    return family


def op(name) -> Op:
    """The description of kernel op `name` (KeyError names the known ops)."""
    if name not in _ops:
        raise KeyError(f"no kernel op named {name!r}; known: {', '.join(sorted(_ops))}")
    return _ops[name][0]


def family_of(name) -> Family:
    """The family that op `name` belongs to."""
    op(name)
    return _ops[name][1]


def geometry_of(name):
    """The geometry function (geom -> {role: shape}) op `name` takes its geometry for, or None
    when it takes no geometry."""
    described, family = op(name), family_of(name)
    return family.geometry if described.takes_geometry else None


def families():
    """Every described family, in the order they were described."""
    return list(_families.values())
