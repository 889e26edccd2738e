"""PyTorch interoperability: bias-free deep linear networks as factor chains.

A bias-free ``nn.Sequential(nn.Linear(d_0, d_1, bias=False), ..., nn.Linear(d_{L-1},
d_L, bias=False))`` computes ``x -> W_L ... W_1 x``; ``nn.Linear.weight`` already has
shape ``(out, in) = (d_i, d_{i-1})``, the convention of this package, so the factors
are the weights in forward order (first layer = ``W_1``). A batch ``x`` of shape
``(n, d_0)`` (rows are samples, PyTorch's convention) corresponds to ``X = x^T`` in
the ``data=`` keyword (:mod:`dmfsharp.objective`).

PyTorch is an optional dependency (``pip install "dmfsharp[torch]"``), imported only
inside the functions that need it. Tensors are detached, moved to the CPU and
converted to float64.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .chain import FactorChain
from .errors import FactorError, FactorFileError
from .torch_weights import read_torch_weights

__all__ = ["from_torch", "load_torch_factors"]


def from_torch(obj: Any) -> FactorChain:
    """Read the factors ``[W_1, ..., W_L]`` of a bias-free PyTorch deep linear network.

    Parameters
    ----------
    obj : nn.Sequential, state_dict or iterable of tensors
        - an ``nn.Sequential`` of ``nn.Linear(..., bias=False)`` layers (nested
          ``nn.Sequential`` blocks are flattened in order);
        - a ``state_dict`` (mapping) whose entries are all ``'<layer>.weight'``. The
          entries are put in forward order by their dotted paths, compared part by part
          with numeric parts as integers (``'2.weight'`` before ``'10.weight'``, whatever
          the mapping's own order) and other parts in the order they first appear (the
          registration order). A state_dict stores no activations: ``nn.Sequential``
          keys that skip an index (``0.weight, 2.weight``) are refused as a sign of a
          parameter-free layer in between, but other architectures cannot be checked;
        - an iterable of 2-D weight tensors (or arrays), first layer first.

        Weights have PyTorch's shape ``(out_features, in_features) = (d_i, d_{i-1})``.

        Tied weights are refused: one ``nn.Linear`` module used at two positions
        (``Sequential(a, b, a)``, also inside nested blocks), two layers sharing one weight
        ``Parameter``, or two entries of a state_dict or list that are the same tensor. The
        network then computes ``W_L ... W_1`` with some ``W_i`` equal by construction, and
        its Hessian (derivatives through both positions at once) is not the Hessian of the
        chain of independent factors that every function of this package computes.

        Frozen layers (``requires_grad=False``) are factors like the others: the chain
        holds every weight, and the sharpness is that of the loss as a function of all
        weights, which is the quantity of the paper and does not depend on which layers an
        optimizer happens to update. ``requires_grad`` is not read, so freezing a layer
        never changes the answer. For the curvature in the trainable layers only, take the
        diagonal Hessian block of each trainable layer with
        :func:`dmfsharp.layer_hessian_block` / :func:`dmfsharp.layer_sharpness` (a single
        trainable layer ``k``: its block is the whole Hessian of the loss in ``W_k``).

    Returns
    -------
    FactorChain
        Float64 copies, W_1 = the first layer.

    Raises
    ------
    FactorError
        A layer that is not a bias-free ``nn.Linear`` (an activation, a layer with a
        bias, ...), a weight that is not 2-D, consecutive layers whose shapes do not
        chain, or tied weights; the message names the offending layers or entries.

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
    weights, names = read_torch_weights(obj)
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
