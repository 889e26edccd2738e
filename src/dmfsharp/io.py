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
from .errors import FactorError, FactorFileError, MemoryLimitError

__all__ = [
    "MARKER",
    "DestinationError",
    "atomic_write",
    "check_destination",
    "load_factors",
    "read_npz",
    "remove_stale_staging",
    "save_factors",
    "staged_folder",
    "to_jsonable",
    "write_json",
]


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


#: Name of the marker file in every folder dmfsharp writes; ``--overwrite`` replaces only
#: a folder that holds it.
MARKER = ".dmfsharp-results"
_STAGING = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.(tmp|old)$")
_PID_FILE = ".dmfsharp-pid"


class DestinationError(OSError):
    """An output path that dmfsharp will not create or replace; the message says why."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale_staging(dest: str | os.PathLike) -> list[Path]:
    """Remove staging folders ``.<name>.<rand>.tmp``/``.old`` of ``dest`` left by killed runs.

    A staging folder is stale when the process that made it (recorded inside it) is no
    longer running. Returns the folders removed.
    """
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _STAGING.match(entry.name)
        if not m or m.group("name") != dest.name or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            pid = int((entry / _PID_FILE).read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid is None or pid == os.getpid() or not _pid_alive(pid):
            if pid == os.getpid():
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def check_destination(
    dest: str | os.PathLike, *, overwrite: bool = False, flag: str = "--overwrite", option: str = "--out"
) -> Path:
    """Check that a results folder may be written at ``dest``; return it as a path.

    ``dest`` may be missing or an empty folder; a non-empty folder only with ``overwrite``
    and only when it holds the :data:`MARKER` file (dmfsharp wrote it); never a file, the
    current directory or one of its parents. ``option`` names the command-line option in
    messages.

    Raises
    ------
    DestinationError
        Naming ``dest`` and what to do instead.
    """
    dest = Path(dest)
    where = f"{option} {dest}" if option else str(dest)
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise DestinationError(f"{where}: exists and is not a folder; choose another output folder")
    if dest.exists():
        here = Path.cwd().resolve()
        target = dest.resolve()
        if target == here or target in here.parents:
            raise DestinationError(
                f"{where}: is the current folder (or holds it); choose a new output folder"
            )
        if any(dest.iterdir()):
            if not overwrite:
                raise DestinationError(f"{where}: folder exists and is not empty (pass {flag} to replace it)")
            if not (dest / MARKER).is_file():
                raise DestinationError(
                    f"{where}: holds no {MARKER} marker, so dmfsharp did not write it and will not "
                    "replace it; remove it yourself or choose another output folder"
                )
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise DestinationError(f"{where}: its parent folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DestinationError(f"{where}: its parent folder {parent} is not writable")
    return dest


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: filesystem cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def staged_folder(
    dest: str | os.PathLike,
    *,
    overwrite: bool = False,
    flag: str = "--overwrite",
    require_marker: bool = True,
):
    """Yield a temporary folder beside ``dest``; on success move it onto ``dest``.

    A results folder is written completely or not at all. ``dest`` is checked by
    :func:`check_destination` (``require_marker=False`` skips the marker test, for a
    folder inside one dmfsharp owns). Stale staging folders of the same ``dest`` left by
    killed runs are removed first. The finished folder gets the :data:`MARKER` file and
    replaces an existing ``dest`` by an atomic exchange where the filesystem supports it,
    so ``dest`` never goes missing. On any error or signal the temporary folder is removed
    and ``dest`` is untouched. ``flag`` names the option that sets ``overwrite``.
    """
    dest = Path(dest)
    if require_marker:
        check_destination(dest, overwrite=overwrite, flag=flag)
    elif dest.exists() and not dest.is_dir():
        raise DestinationError(f"{dest}: exists and is not a folder")
    remove_stale_staging(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        (tmp / _PID_FILE).write_text(str(os.getpid()))
        yield tmp
        (tmp / _PID_FILE).unlink()
        (tmp / MARKER).write_text("written by dmfsharp; --overwrite may replace this folder\n")
        mask = _umask()
        for dirpath, _dirs, files in os.walk(tmp):
            os.chmod(dirpath, 0o777 & ~mask)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o666 & ~mask)
        if dest.exists() and _exchange(tmp, dest):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        elif dest.exists():
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


#: Most arrays an ``.npz`` file may hold (a depth-1000 chain plus its target).
MAX_NPZ_MEMBERS = 1024
#: Most factors ``W1 ... WL`` in a factors file.
MAX_FACTORS = 1000
#: Declared-to-compressed size ratio above which an ``.npz`` member is refused as a zip bomb.
MAX_COMPRESSION_RATIO = 1000
_KEY_CANON = re.compile(r"^W([1-9][0-9]{0,5})$")
_KEY_LIKE = re.compile(r"^W[0-9]+$")


def _npy_header(fh) -> tuple[tuple[int, ...], np.dtype]:
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
