"""Reading and writing factors and results files, atomically.

A factors file is an ``.npz`` holding ``W1, ..., WL`` (W_1 first, ``W_i`` of shape
``(d_i, d_{i-1})``) and optionally ``M``. Every writer goes through a temporary file
in the destination folder and :func:`os.replace`, so a file is written completely or
not at all. Results folders are staged by :mod:`dmfsharp.staging` (its names are
re-exported here). Factor files are read headers first, with size limits
(:func:`read_npz`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .chain import FactorChain, FactorsLike, as_chain, as_float_array
from .errors import FactorError, FactorFileError, MemoryLimitError
from .staging import (
    MARKER,
    DestinationError,
    check_destination,
    current_umask,
    remove_stale_staging,
    staged_folder,
)

__all__ = [
    "MARKER",
    "DestinationError",
    "atomic_write",
    "check_destination",
    "load_factors",
    "read_npy",
    "read_npz",
    "remove_stale_staging",
    "save_factors",
    "staged_folder",
    "to_jsonable",
    "write_json",
]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched. The
    file gets the ordinary permissions of a new file (``0o666`` less the umask), not
    the private ones of a temporary file.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    mode : str, optional
        The ``open`` mode (``"w"`` or ``"wb"``).
    **kwargs
        Passed to ``os.fdopen`` (``encoding=``, ``newline=``).

    Yields
    ------
    file object
        The open temporary file.

    Raises
    ------
    OSError
        If the folder is not writable or the rename fails.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


#: Name of the marker file in every folder dmfsharp writes; ``--overwrite`` replaces only
#: a folder that holds it.


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and paths to plain JSON types (NaN -> None).

    Parameters
    ----------
    obj : object
        Nested dicts, lists, tuples, arrays, NumPy scalars, paths.

    Returns
    -------
    object
        The same structure of ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``
        and ``None``.

    Examples
    --------
    >>> to_jsonable({"a": np.array([1.0, np.nan]), "b": (np.int64(2),)})
    {'a': [1.0, None], 'b': [2]}
    """
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
    """Write ``obj`` as indented JSON, atomically.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    obj : object
        Anything :func:`to_jsonable` converts.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(to_jsonable(obj), fh, indent=2, allow_nan=False)
        fh.write("\n")


def save_factors(path: str | os.PathLike, factors: FactorsLike, *, target: Any = None) -> Path:
    """Save ``W1 ... WL`` (and ``M`` if given) to an ``.npz`` file, atomically.

    Returns the path written (``.npz`` is appended if missing, as NumPy does).

    Parameters
    ----------
    path : str or path-like
        The file to write; ``.npz`` is appended if missing.
    factors : FactorChain or sequence of array_like
        ``W_i`` of shape ``(d_i, d_{i-1})``, W_1 first (float64 after validation).
    target : array_like, shape (d_L, d_0), optional
        The target ``M``, saved under the key ``M``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FactorError
        If ``factors`` or ``target`` is invalid (``target`` must have ``d_L d_0``
        entries).
    OSError
        If the file cannot be written (nothing partial is left behind).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025; Section 2 (``W_i`` of shape ``(d_i, d_{i-1})``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from dmfsharp import section6_example, sharpness
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_factors(pathlib.Path(tmp) / "s6", section6_example())
    ...     chain, m = load_factors(path)
    >>> path.name, sharpness(chain), m is None
    ('s6.npz', 44.0, True)
    """
    chain = as_chain(factors)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict[str, Any] = {f"W{i}": w for i, w in enumerate(chain.factors, start=1)}
    if target is not None:
        m = as_float_array(target, "target M", ndim=None).reshape(chain.dims[-1], chain.dims[0])
        arrays["M"] = m
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


#: Most arrays an ``.npz`` file may hold (a depth-1000 chain plus its target).
MAX_NPZ_MEMBERS = 1024
#: Most factors ``W1 ... WL`` in a factors file.
MAX_FACTORS = 1000
#: Declared-to-compressed size ratio above which an ``.npz`` member is refused as a zip bomb.
MAX_COMPRESSION_RATIO = 1000
_KEY_CANON = re.compile(r"^W([1-9][0-9]{0,5})$")
_KEY_LIKE = re.compile(r"^W[0-9]+$")


def _npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    from numpy.lib import format as npformat

    version = npformat.read_magic(fh)
    if version == (1, 0):
        shape, _fortran, dtype = npformat.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _fortran, dtype = npformat.read_array_header_2_0(fh)
    else:
        raise ValueError(f".npy format version {version} is not supported")
    return tuple(int(d) for d in shape), np.dtype(dtype)


def read_npz(path: str | os.PathLike, *, keys: Any = None, what: str | None = None) -> dict[str, np.ndarray]:
    """Read the arrays of an ``.npz`` file safely: headers first, data only when it fits.

    The file must be a regular file (not a FIFO or device); it may hold at most
    :data:`MAX_NPZ_MEMBERS` arrays; every member's ``.npy`` header is read before its data
    and refused when its size exceeds :func:`dmfsharp.limits.max_bytes`, exceeds what the
    archive declares, or the member is compressed more than
    :data:`MAX_COMPRESSION_RATIO` to 1 (a zip bomb). Object arrays are never unpickled.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.
    keys : callable or collection of str, optional
        Which arrays to load (a predicate on the name, or a set of names); default all.
    what : str, optional
        How to name the file in messages (default: the path).

    Returns
    -------
    dict of str to numpy.ndarray
        The selected arrays by name.

    Raises
    ------
    FactorFileError
        If the file is missing, not a regular file, not an ``.npz`` archive, damaged, or
        holds an array that is too large or not numeric.
    MemoryLimitError
        If an array's header claims more than the memory limit.
    """
    import stat
    import zlib

    from .limits import check_allocation, max_bytes

    path = Path(path)
    name = what or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FactorFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise FactorFileError(f"{name}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise FactorFileError(f"{name}: is a folder, expected an .npz file")
    if not stat.S_ISREG(st.st_mode):
        raise FactorFileError(f"{name}: not a regular file, expected an .npz file")
    want = keys if callable(keys) or keys is None else set(keys).__contains__
    out: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as raw:
            magic = raw.read(6)
            if magic == b"\x93NUMPY":
                raise FactorFileError(f"{name}: is a single-array .npy file, expected an .npz archive")
            raw.seek(0)
            with zipfile.ZipFile(raw) as zf:
                infos = zf.infolist()
                if len(infos) > MAX_NPZ_MEMBERS:
                    raise FactorFileError(
                        f"{name}: holds {len(infos)} arrays, more than the limit of {MAX_NPZ_MEMBERS}"
                    )
                limit = max_bytes()
                total = 0
                for info in infos:
                    if not info.filename.endswith(".npy"):
                        continue
                    key = info.filename[:-4]
                    if want is not None and not want(key):
                        continue
                    if info.file_size > limit:
                        raise FactorFileError(
                            f"{name}: array {key!r} declares {info.file_size} bytes, over the limit"
                        )
                    if info.file_size > 2**20 and info.file_size > MAX_COMPRESSION_RATIO * max(
                        info.compress_size, 1
                    ):
                        raise FactorFileError(
                            f"{name}: array {key!r} is compressed more than {MAX_COMPRESSION_RATIO}:1 "
                            "(a zip bomb?); refused"
                        )
                    with zf.open(info) as fh:
                        shape, dtype = _npy_header(fh)
                        if dtype.hasobject or dtype.kind not in "biuf":
                            raise FactorFileError(
                                f"{name}: array {key!r} has dtype {dtype}, expected real numbers"
                            )
                        check_allocation(shape, what=f"{name}: array {key!r}", itemsize=dtype.itemsize)
                        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                        if nbytes > info.file_size:
                            raise FactorFileError(
                                f"{name}: array {key!r} is truncated (its header claims {shape})"
                            )
                        total += nbytes
                        if total > limit:
                            check_allocation((total,), what=f"{name}: the arrays together", itemsize=1)
                    with zf.open(info) as fh:
                        from numpy.lib import format as npformat

                        out[key] = npformat.read_array(fh, allow_pickle=False)
    except (FactorFileError, MemoryLimitError):
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        ValueError,
        OSError,
        NotImplementedError,
        KeyError,
    ) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FactorFileError(f"{name}: not a readable .npz file ({first})") from None
    return out


def read_npy(path: str | os.PathLike, *, what: str | None = None) -> np.ndarray:
    """Read one real array from an ``.npy`` file safely: header first, data only when it fits.

    The file must be a regular file (not a folder, FIFO or device); the header is read
    and the array refused before its data is touched when its dtype is not real numbers
    (object arrays are never unpickled), its size exceeds
    :func:`dmfsharp.limits.max_bytes`, or the file is shorter than the header claims.

    Parameters
    ----------
    path : path-like
        The ``.npy`` file.
    what : str, optional
        How to name the file in messages (default: the path).

    Returns
    -------
    numpy.ndarray
        The array as stored (any real dtype).

    Raises
    ------
    FactorFileError
        Missing, not a regular file, not an ``.npy`` file, truncated, or not real numbers.
    MemoryLimitError
        If the header claims more than the memory limit.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
    >>> np.save(p, np.eye(2))
    >>> read_npy(p).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    import stat

    from numpy.lib import format as npformat

    from .limits import check_allocation

    path = Path(path)
    name = what or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FactorFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise FactorFileError(f"{name}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise FactorFileError(f"{name}: is a folder, expected an .npy file")
    if not stat.S_ISREG(st.st_mode):
        raise FactorFileError(f"{name}: not a regular file, expected an .npy file")
    try:
        with open(path, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY":
                raise FactorFileError(f"{name}: not an .npy file (np.save writes them)")
            fh.seek(0)
            shape, dtype = _npy_header(fh)
            if dtype.hasobject or dtype.kind not in "biuf":
                raise FactorFileError(f"{name}: has dtype {dtype}, expected real numbers")
            check_allocation(shape, what=name, itemsize=dtype.itemsize)
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if nbytes > st.st_size - fh.tell():
                raise FactorFileError(f"{name}: is truncated (its header claims shape {shape})")
            fh.seek(0)
            return npformat.read_array(fh, allow_pickle=False)
    except (FactorFileError, MemoryLimitError):
        raise
    except (ValueError, OSError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FactorFileError(f"{name}: not a readable .npy file ({first})") from None


def load_factors(
    path: str | os.PathLike, *, what: str | None = None
) -> tuple[FactorChain, np.ndarray | None]:
    """Load a factors file: ``(chain, M or None)``.

    The file is read by :func:`read_npz` (headers before data, size limits). Factor keys
    are ``W1 ... WL`` exactly: no gaps, no leading zeros, at most :data:`MAX_FACTORS`.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.
    what : str, optional
        How to name the file in messages (default: the path).

    Returns
    -------
    tuple
        The :class:`~dmfsharp.chain.FactorChain` and the target ``M`` (shape
        ``(d_L, d_0)``) or None.

    Raises
    ------
    FactorFileError
        If the file is missing or unreadable, holds no ``W1``, skips an index, holds
        arrays that are not valid factors, or an ``M`` of the wrong shape.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025; Section 2 (the factor convention).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_factors(pathlib.Path(tmp) / "f.npz", [np.eye(2), 3 * np.eye(2)], target=3 * np.eye(2))
    ...     chain, m = load_factors(path)
    >>> chain.dims, m.tolist()
    ((2, 2, 2), [[3.0, 0.0], [0.0, 3.0]])
    """
    name = what or str(path)
    arrays = read_npz(path, keys=lambda k: k == "M" or bool(_KEY_LIKE.match(k)), what=name)
    odd = sorted(k for k in arrays if k != "M" and not _KEY_CANON.match(k))
    if odd:
        raise FactorFileError(
            f"{name}: unexpected factor key {odd[0][:24]!r}; factor keys are W1, W2, ..., WL "
            f"(no leading zeros, at most {MAX_FACTORS})"
        )
    idx = sorted(int(k[1:]) for k in arrays if k != "M")
    if not idx:
        raise FactorFileError(f"{name}: no factors found; expected arrays named W1, W2, ..., WL")
    if len(idx) > MAX_FACTORS:
        raise FactorFileError(f"{name}: holds {len(idx)} factors, more than the limit of {MAX_FACTORS}")
    if idx != list(range(1, len(idx) + 1)):
        gap = next(i for i, k in enumerate(idx, start=1) if i != k)
        raise FactorFileError(
            f"{name}: factor keys must be W1 ... WL without gaps; found {len(idx)} keys, missing W{gap}"
        )
    try:
        chain = FactorChain([arrays[f"W{i}"] for i in idx])
        target = None
        if "M" in arrays:
            from .chain import check_target

            target = check_target(chain, arrays["M"])
    except FactorError as exc:
        raise FactorFileError(f"{name}: {exc}") from None
    return chain, target
