"""Read the weights of a bias-free PyTorch deep linear network, without building a chain.

The reader behind :func:`dmfsharp.from_torch` and behind ``FactorChain(nn.Sequential)``:
it returns the raw weights in forward order and a label for each (``"layer 2"``,
``"state_dict entry '3.weight'"``), and refuses what is not a chain of independent
bias-free ``nn.Linear`` layers. It does not import :mod:`dmfsharp.chain`, so the chain
can call it lazily without an import cycle. PyTorch is imported only inside functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import FactorError

__all__ = ["is_tensor", "read_torch_weights", "state_dict_order"]


def is_tensor(obj: Any) -> bool:
    """True for a ``torch.Tensor`` (duck-typed: PyTorch is not imported).

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool
        Whether ``obj`` has the tensor attributes ``detach``, ``cpu`` and ``shape``.

    Examples
    --------
    >>> is_tensor([[1.0]])
    False
    """
    return hasattr(obj, "detach") and hasattr(obj, "cpu") and hasattr(obj, "shape")


def _check_weight(name: str, w: Any) -> Any:
    if not hasattr(w, "shape"):
        return w  # nested lists and the like: FactorChain validates them
    shape = tuple(w.shape)
    if len(shape) != 2:
        raise FactorError(
            f"{name} has shape {shape}: only 2-D weights (out, in) of bias-free nn.Linear "
            "layers form a deep linear network"
        )
    return w


def _tied_error(first: str, again: str, what: str) -> FactorError:
    return FactorError(
        f"{again} is {what} as {first} (tied weights): a network that uses one weight twice is "
        "not a factorization with independent factors, so its Hessian is not the chain's; "
        "give each position its own nn.Linear (e.g. copy.deepcopy) to study the untied chain"
    )


def _direct_children(module: Any) -> list[tuple[str, Any]]:
    # named_children() drops a module registered twice; named_modules(remove_duplicate=False)
    # keeps every position, and its names without a dot are the direct children
    return [(n, m) for n, m in module.named_modules(remove_duplicate=False) if n and "." not in n]


def _from_module(module: Any, prefix: str, names: list[str], seen: dict[int, str]) -> list[Any]:
    import torch.nn as nn  # lazy: only reached with a torch module in hand

    out = []
    children = _direct_children(module)
    if not children:
        raise FactorError(f"nn.Sequential {prefix.rstrip('.') or '(top level)'} has no layers")
    for name, layer in children:
        label = f"{prefix}{name}"
        if isinstance(layer, nn.Sequential):
            out.extend(_from_module(layer, f"{label}.", names, seen))
            continue
        if not isinstance(layer, nn.Linear):
            raise FactorError(
                f"layer {label} ({type(layer).__name__}) is not a bias-free nn.Linear; only "
                "chains of nn.Linear(..., bias=False) are deep linear networks"
            )
        if layer.bias is not None:
            raise FactorError(
                f"layer {label} (nn.Linear {layer.in_features} -> {layer.out_features}) has a "
                "bias; build it with bias=False (deep matrix factorization has no biases)"
            )
        if id(layer) in seen:
            raise _tied_error(f"layer {seen[id(layer)]}", f"layer {label}", "the same nn.Linear module")
        if id(layer.weight) in seen:
            raise _tied_error(
                f"layer {seen[id(layer.weight)]}",
                f"layer {label}",
                "an nn.Linear sharing its weight Parameter",
            )
        seen[id(layer)] = seen[id(layer.weight)] = label
        out.append(_check_weight(f"layer {label} weight", layer.weight))
        names.append(f"layer {label}")
    return out


def state_dict_order(keys: list[str]) -> list[str]:
    """The keys of a ``state_dict`` in forward order: dotted paths compared part by part.

    Numeric parts compare as integers (``2`` before ``10``, so a mapping sorted as strings,
    ``0, 1, 10, 11, 2, ...``, is put back in layer order); other parts keep the order in
    which they first appear (the registration order of a ``state_dict``). The sort is stable.

    Parameters
    ----------
    keys : list of str
        The entries' names, e.g. ``"3.weight"`` or ``"block.0.weight"``.

    Returns
    -------
    list of str
        The same keys, in forward order.

    Examples
    --------
    >>> state_dict_order(["0.weight", "1.weight", "10.weight", "2.weight"])
    ['0.weight', '1.weight', '2.weight', '10.weight']
    """
    rank: dict[str, int] = {}
    for key in keys:
        for part in key.split("."):
            rank.setdefault(part, len(rank))

    def sort_key(key: str) -> tuple[tuple[int, int], ...]:
        return tuple((0, int(p)) if p.isdigit() else (1, rank[p]) for p in key.split("."))

    return sorted(keys, key=sort_key)


_SEQ_KEY = re.compile(r"^(.*?)(\d+)\.weight$")


def _check_gaps(keys: list[str]) -> None:
    """Refuse ``nn.Sequential`` keys that skip an index (a parameter-free layer there).

    A state_dict stores no activations, so ``0.weight, 2.weight`` most likely comes from
    ``Linear, ReLU, Linear``: that network is not linear and is refused.
    """
    matches = [m for k in keys if (m := _SEQ_KEY.match(k)) is not None]
    if len(matches) != len(keys) or len({m.group(1) for m in matches}) != 1:
        return
    idx = [int(m.group(2)) for m in matches]
    for i in range(len(idx) - 1):
        a, ka, b, kb = idx[i], keys[i], idx[i + 1], keys[i + 1]
        if b != a + 1:
            raise FactorError(
                f"state_dict entries {ka!r} and {kb!r} skip layer index {a + 1}: a layer "
                "without weights (an activation?) sits between them, so this is not a "
                "bias-free linear chain"
            )


def _check_untied(weights: list[Any], names: list[str]) -> None:
    """Refuse two tensors that share storage (a state_dict of a model with tied weights)."""
    seen: dict[tuple[Any, ...], str] = {}
    for w, name in zip(weights, names, strict=True):
        if not (is_tensor(w) and hasattr(w, "data_ptr")) or w.numel() == 0:
            continue
        where = (str(w.device), w.data_ptr(), tuple(w.shape), tuple(w.stride()))
        if where in seen:
            raise _tied_error(seen[where], name, "the same tensor")
        seen[where] = name


def _check_chained(weights: list[Any], names: list[str]) -> None:
    """Refuse consecutive weights whose shapes do not chain, naming the layers."""
    shapes = [tuple(w.shape) if hasattr(w, "shape") else None for w in weights]
    for i in range(1, len(weights)):
        prev, cur = shapes[i - 1], shapes[i]
        if prev is not None and cur is not None and cur[1] != prev[0]:
            where = "; ".join(f"W_{j} = {n}" for j, n in enumerate(names, start=1))
            raise FactorError(
                f"factor W_{i + 1} ({names[i]}) has shape {cur} but W_{i} ({names[i - 1]}) has shape "
                f"{prev}: W_{i + 1} must have {prev[0]} columns (d_{i} = {prev[0]}) [{where}]"
            )


def _from_mapping(state: Mapping, names: list[str]) -> list[Any]:
    if not state:
        raise FactorError("the state_dict is empty")
    by_key = {str(k): v for k, v in state.items()}
    keys = state_dict_order(list(by_key))
    _check_gaps(keys)
    out = []
    for key in keys:
        if key.endswith("bias"):
            raise FactorError(
                f"state_dict entry {key!r} is a bias; only bias-free nn.Linear layers form a "
                "deep linear network"
            )
        if not key.endswith("weight"):
            raise FactorError(
                f"state_dict entry {key!r} is not a layer weight; expected only '<layer>.weight' "
                "entries of bias-free nn.Linear layers"
            )
        out.append(_check_weight(f"state_dict entry {key!r}", by_key[key]))
        names.append(f"state_dict entry {key!r}")
    return out


def read_torch_weights(obj: Any) -> tuple[list[Any], list[str]]:
    """The weights of a bias-free PyTorch deep linear network, first layer first, with labels.

    Parameters
    ----------
    obj : nn.Sequential, state_dict or iterable of tensors
        See :func:`dmfsharp.from_torch`.

    Returns
    -------
    weights : list
        The 2-D weights as given (tensors, arrays), of shape ``(d_i, d_{i-1})``, W_1 first;
        not yet converted or checked to chain.
    names : list of str
        One label per weight (``"layer 0"``, ``"state_dict entry '0.weight'"``, ``"weight 0"``).

    Raises
    ------
    FactorError
        A layer that is not a bias-free ``nn.Linear``, a weight that is not 2-D, a
        ``state_dict`` that skips a layer index, or tied weights (one module or tensor at two
        positions); the message names the layers or entries.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 2 (deep linear networks ``x -> W_L ... W_1 x``).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 2, bias=False))
    >>> weights, names = read_torch_weights(net)
    >>> [tuple(w.shape) for w in weights], names
    ([(4, 3), (2, 4)], ['layer 0', 'layer 1'])
    """
    if is_tensor(obj):
        raise FactorError(
            f"from_torch got a single tensor of shape {tuple(obj.shape)}; pass an "
            "nn.Sequential, a state_dict or a list of weight tensors"
        )
    names: list[str] = []
    mod = type(obj).__module__ or ""
    if mod.startswith("torch.nn") or hasattr(obj, "named_children"):
        import torch.nn as nn

        if isinstance(obj, nn.Linear):
            raise FactorError(
                "from_torch got a single nn.Linear; a deep linear network needs "
                "at least two layers in an nn.Sequential"
            )
        if not isinstance(obj, nn.Sequential):
            raise FactorError(
                f"from_torch got a {type(obj).__name__}; pass an nn.Sequential of bias-free "
                "nn.Linear layers, or the model's state_dict() of layer weights in forward order"
            )
        weights = _from_module(obj, "", names, {})
        _check_chained(weights, names)
        return weights, names
    if isinstance(obj, Mapping):
        weights = _from_mapping(obj, names)
    else:
        try:
            items = list(obj)
        except TypeError:
            raise FactorError(
                f"from_torch cannot read a {type(obj).__name__}; pass an nn.Sequential, a "
                "state_dict or a list of weight tensors"
            ) from None
        weights = [_check_weight(f"weight {i}", w) for i, w in enumerate(items)]
        names.extend(f"weight {i}" for i in range(len(weights)))
    _check_untied(weights, names)
    _check_chained(weights, names)
    return weights, names
