"""Reading and writing factors and results files, atomically.

A factors file is an ``.npz`` holding ``W1, ..., WL`` (W_1 first, ``W_i`` of shape
``(d_i, d_{i-1})``) and optionally ``M``. Every writer goes through a temporary file
in the destination folder and :func:`os.replace`, so a file is written completely or
not at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .chain import FactorChain, FactorsLike, as_chain, as_float_array
from .errors import FactorError, FactorFileError

__all__ = ["save_factors", "load_factors", "atomic_write", "staged_folder", "write_json", "to_jsonable"]

_KEY = re.compile(r"^W(\d+)$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs):
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched. The
    file gets the ordinary permissions of a new file (``0o666`` less the umask), not
    the private ones of a temporary file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_folder(dest: str | os.PathLike, *, overwrite: bool = False, flag: str = "--overwrite"):
    """Yield a temporary folder beside ``dest``; on success move it onto ``dest``.

    A results folder is written completely or not at all: ``dest`` must not exist (or
    be an empty folder) unless ``overwrite``, in which case it is replaced only once the
    new one is complete. On any error the temporary folder is removed and ``dest`` is
    untouched. ``flag`` names the command-line option that sets ``overwrite``, for the
    error message.
    """
    dest = Path(dest)
    if dest.exists():
        if not dest.is_dir():
            raise OSError(f"{dest}: exists and is not a folder")
        if any(dest.iterdir()) and not overwrite:
            raise OSError(f"{dest}: folder exists and is not empty (pass {flag} to replace it)")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"{parent}: no such folder")
    if not os.access(parent, os.W_OK):
        raise OSError(f"{parent}: folder is not writable")
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        yield tmp
        mask = _umask()
        for dirpath, _dirs, files in os.walk(tmp):
            os.chmod(dirpath, 0o777 & ~mask)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o666 & ~mask)
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.", suffix=".old"))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and paths to plain JSON types (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(to_jsonable(obj), fh, indent=2, allow_nan=False)
        fh.write("\n")


def save_factors(path: str | os.PathLike, factors: FactorsLike, *, target: Any = None) -> Path:
    """Save ``W1 ... WL`` (and ``M`` if given) to an ``.npz`` file, atomically.

    Returns the path written (``.npz`` is appended if missing, as NumPy does).
    """
    chain = as_chain(factors)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {f"W{i}": w for i, w in enumerate(chain.factors, start=1)}
    if target is not None:
        m = as_float_array(target, "target M", ndim=None).reshape(chain.dims[-1], chain.dims[0])
        arrays["M"] = m
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_factors(path: str | os.PathLike) -> tuple[FactorChain, np.ndarray | None]:
    """Load a factors file: ``(chain, M or None)``.

    Raises
    ------
    FactorFileError
        If the file is missing or unreadable, holds no ``W1``, skips an index,
        holds arrays that are not valid factors, or an ``M`` of the wrong shape.
    """
    path = Path(path)
    if not path.exists():
        raise FactorFileError(f"{path}: no such file")
    if path.is_dir():
        raise FactorFileError(f"{path}: is a folder, expected an .npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FactorFileError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(arrays, dict):
        raise FactorFileError(f"{path}: expected an .npz archive of arrays W1 ... WL")
    idx = sorted(int(m.group(1)) for k in arrays if (m := _KEY.match(k)))
    if not idx:
        raise FactorFileError(f"{path}: no factors found; expected arrays named W1, W2, ..., WL")
    if idx != list(range(1, len(idx) + 1)):
        missing = sorted(set(range(1, max(idx) + 1)) - set(idx))
        raise FactorFileError(
            f"{path}: factor keys must be W1 ... WL without gaps; found {[f'W{i}' for i in idx]}"
            + (f", missing {[f'W{i}' for i in missing]}" if missing else "")
        )
    try:
        chain = FactorChain([arrays[f"W{i}"] for i in idx])
        target = None
        if "M" in arrays:
            from .chain import check_target

            target = check_target(chain, arrays["M"])
    except FactorError as exc:
        raise FactorFileError(f"{path}: {exc}") from None
    return chain, target
