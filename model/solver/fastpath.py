"""Which networks the hand-written numerics accept, said once and checked, never guessed.

The fast code (folded.py's FoldedMLP under backprop.py and adjoint.py; odernn.py's
recurrence) computes one function only: a chain of nn.Linear layers with tanh between them (the ODE-RNN's ODE:
exactly hidden → units → hidden). `tanh_mlp` and `odernn_ode` return the layers of a network that is that function
and raise `NotFastPath`, naming what differs, for any other; `is_tanh_mlp` / `is_fast_odernn` say which way a caller
goes. Everything else (another activation, another depth, extra modules) takes autograd through the module
itself: slower, the same function as the module computes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from torch import nn

if TYPE_CHECKING:
    from model.network import ODERNNEncoder

__all__ = ["NotFastPath", "tanh_mlp", "is_tanh_mlp", "odernn_ode", "is_fast_odernn", "TANH"]

TANH = (nn.Tanh,)  # model/network.py's Tanh subclasses nn.Tanh: the same function, either counts


class NotFastPath(TypeError):
    """A network handed to the hand-written numerics is not the function they compute."""


def tanh_mlp(net: nn.Module) -> list[nn.Linear]:
    """The Linear layers of `net` when it is nn.Sequential(Linear, tanh, Linear, ..., Linear) with each layer's
    inputs the previous one's outputs; NotFastPath otherwise."""
    if not isinstance(net, nn.Sequential) or len(net) == 0:
        raise NotFastPath(f"expected an nn.Sequential of Linear and Tanh layers, got {type(net).__name__}")
    modules = list(net)
    between = modules[1::2]
    if len(modules) % 2 == 0:
        raise NotFastPath(f"{net!r} does not end with a Linear layer")
    layers: list[nn.Linear] = []
    for m in modules[0::2]:
        if type(m) is not nn.Linear or m.bias is None:
            raise NotFastPath(f"{type(m).__name__} where a Linear layer with a bias must be, in {net!r}")
        layers.append(m)
    for m in between:
        if not isinstance(m, TANH):
            raise NotFastPath(f"{type(m).__name__} where tanh must be, in {net!r}: the fast code folds tanh only")
    for a, b in itertools.pairwise(layers):
        if a.out_features != b.in_features:
            raise NotFastPath(f"{a!r} feeds {b!r}: the sizes do not chain")
    return layers


def is_tanh_mlp(net: nn.Module) -> bool:
    return _matches(tanh_mlp, net)


def odernn_ode(encoder: ODERNNEncoder) -> tuple[nn.Linear, nn.Linear]:
    """(first, last): the ODE-RNN encoder's ODE when it is Linear(hidden → units), tanh, Linear(units → hidden),
    the function odernn.py's recurrence computes; NotFastPath otherwise."""
    layers = tanh_mlp(encoder.ode)
    if len(layers) != 2:
        raise NotFastPath(f"the ODE-RNN's ODE has {len(layers) - 1} hidden layers; the fast recurrence takes one")
    first, last = layers
    if first.in_features != encoder.hidden or last.out_features != encoder.hidden:
        raise NotFastPath(f"the ODE-RNN's ODE maps {first.in_features} → {last.out_features}, not the state's "
                          f"{encoder.hidden} → {encoder.hidden}")
    return first, last


def is_fast_odernn(encoder: ODERNNEncoder) -> bool:
    return _matches(odernn_ode, encoder)


_M = TypeVar("_M", bound=nn.Module)


def _matches(check: Callable[[_M], object], module: _M) -> bool:
    """Whether `check` (tanh_mlp, odernn_ode) takes `module` without raising NotFastPath."""
    try:
        check(module)
    except NotFastPath:
        return False
    return True
