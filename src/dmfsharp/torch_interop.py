"""PyTorch interoperability: bias-free deep linear networks as factor chains.

A bias-free ``nn.Sequential(nn.Linear(d_0, d_1, bias=False), ..., nn.Linear(d_{L-1},
d_L, bias=False))`` computes ``x -> W_L ... W_1 x``; ``nn.Linear.weight`` already has
shape ``(out, in) = (d_i, d_{i-1})``, the convention of this package, so the factors
are the weights in forward order (first layer = ``W_1``). A batch ``x`` of shape
``(n, d_0)`` (rows are samples, PyTorch's convention) corresponds to ``X = x^T`` in
:mod:`dmfsharp.data`.

PyTorch is an optional dependency (``pip install "dmfsharp[torch]"``), imported only
inside the functions that need it. Tensors are detached, moved to the CPU and
converted to float64.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .chain import FactorChain
from .errors import FactorError, FactorFileError

__all__ = ["from_torch", "load_torch_factors"]


def _is_tensor(obj: Any) -> bool:
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


def _from_module(module: Any, prefix: str = "", names: list | None = None) -> list:
    import torch.nn as nn  # lazy: only reached with a torch module in hand

    out = []
    children = list(module.named_children())
    if not children:
        raise FactorError(f"nn.Sequential {prefix or '(top level)'} has no layers")
    for name, layer in children:
        label = f"{prefix}{name}"
        if isinstance(layer, nn.Sequential):
            out.extend(_from_module(layer, prefix=f"{label}.", names=names))
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
        out.append(_check_weight(f"layer {label} weight", layer.weight))
        if names is not None:
            names.append(f"layer {label}")
    return out


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


def _from_mapping(state: Mapping, names: list | None = None) -> list:
    out = []
    if not state:
        raise FactorError("the state_dict is empty")
    _check_gaps([str(k) for k in state.keys()])
    for key, value in state.items():
        key = str(key)
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
        out.append(_check_weight(f"state_dict entry {key!r}", value))
        if names is not None:
            names.append(f"state_dict entry {key!r}")
    return out


def from_torch(obj: Any) -> FactorChain:
    """Read the factors ``[W_1, ..., W_L]`` of a bias-free PyTorch deep linear network.

    Parameters
    ----------
    obj : nn.Sequential, state_dict or iterable of tensors
        - an ``nn.Sequential`` of ``nn.Linear(..., bias=False)`` layers (nested
          ``nn.Sequential`` blocks are flattened in order);
        - a ``state_dict`` (mapping) whose entries are all ``'<layer>.weight'``, in
          forward order (the order of registration, which is the forward order for
          ``nn.Sequential``). A state_dict stores no activations: ``nn.Sequential``
          keys that skip an index (``0.weight, 2.weight``) are refused as a sign of a
          parameter-free layer in between, but other architectures cannot be checked;
        - an iterable of 2-D weight tensors (or arrays), first layer first.

        Weights have PyTorch's shape ``(out_features, in_features) = (d_i, d_{i-1})``.

    Returns
    -------
    FactorChain
        Float64 copies, W_1 = the first layer.

    Raises
    ------
    FactorError
        A layer that is not a bias-free ``nn.Linear`` (an activation, a layer with a
        bias, ...), a weight that is not 2-D, or consecutive layers whose shapes do not
        chain; the message names the offending layer or entry.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 2 (deep linear networks ``x -> W_L ... W_1 x``).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False),
    ...                           torch.nn.Linear(4, 2, bias=False))
    >>> from_torch(net).dims
    (3, 4, 2)
    """
    if _is_tensor(obj):
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
        weights = _from_module(obj, names=names)
    elif isinstance(obj, Mapping):
        weights = _from_mapping(obj, names=names)
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
    try:
        return FactorChain(weights)
    except FactorError as exc:
        where = "; ".join(f"W_{i} = {n}" for i, n in enumerate(names, start=1))
        raise FactorError(f"{exc} [{where}]") from None


def load_torch_factors(path: str | os.PathLike) -> FactorChain:
    """Load a saved ``state_dict`` (``torch.save(model.state_dict(), path)``) as factors.

    Read with ``torch.load(path, map_location="cpu", weights_only=True)`` (no
    arbitrary code runs). A saved list of weight tensors also works.

    Parameters
    ----------
    path : str or path-like
        The ``.pt`` file.

    Returns
    -------
    FactorChain
        Float64 copies of the weights, W_1 = the first layer.

    Raises
    ------
    FactorFileError
        Missing or unreadable file, PyTorch not installed, or contents that are not a
        bias-free linear chain (the message names the entry).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 2.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from dmfsharp import sharpness
    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(2.0), net[1].weight.fill_(3.0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     torch.save(net.state_dict(), pathlib.Path(tmp) / "net.pt")
    ...     chain = load_torch_factors(pathlib.Path(tmp) / "net.pt")
    >>> chain.dims, sharpness(chain)  # Theorem 4: 2 (3^2 + 2^2)
    ((1, 1, 1), 26.0)
    """
    path = Path(path)
    if not path.exists():
        raise FactorFileError(f"{path}: no such file")
    if path.is_dir():
        raise FactorFileError(f"{path}: is a folder, expected a .pt file")
    try:
        import torch
    except ImportError:
        raise FactorFileError(
            f"{path}: reading .pt files needs PyTorch (pip install 'dmfsharp[torch]')"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FactorFileError(f"{path}: not a readable weights-only PyTorch file ({msg})") from None
    try:
        return from_torch(state)
    except FactorError as exc:
        raise FactorFileError(f"{path}: {exc}") from None
