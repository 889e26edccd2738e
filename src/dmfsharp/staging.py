"""Results folders written whole or not at all: staging, the marker, overwrite by swap.

A command that writes a results folder builds it in a hidden sibling
``.<out>.<rand>.tmp`` and moves it into place at the end (:func:`staged_folder`). The
finished folder holds the :data:`MARKER` file; ``--overwrite`` replaces only a folder that
holds it, never the current directory, and swaps the new folder in atomically where the
filesystem allows, so the path never goes missing. Staging folders left by killed runs are
removed by the next run of the same output.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "MARKER",
    "DestinationError",
    "check_destination",
    "current_umask",
    "remove_stale_staging",
    "staged_folder",
]


def current_umask() -> int:
    """Return the process's file-creation mask (read, then restored unchanged).

    Returns
    -------
    int
        The umask, e.g. ``0o022``.
    """
    mask = os.umask(0)
    os.umask(mask)
    return mask


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

    Parameters
    ----------
    dest : str or path-like
        The results folder whose leftovers to look for (beside it).

    Returns
    -------
    list of pathlib.Path
        The staging folders removed (empty if none, or if the parent cannot be listed).
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

    Parameters
    ----------
    dest : str or path-like
        The results folder to write.
    overwrite : bool, optional
        Whether a non-empty folder written by dmfsharp may be replaced.
    flag : str, optional
        The option that sets ``overwrite``, for messages.
    option : str, optional
        The option that names ``dest``, for messages ("" for none).

    Returns
    -------
    pathlib.Path
        ``dest`` as a path.

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
) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; on success move it onto ``dest``.

    A results folder is written completely or not at all. ``dest`` is checked by
    :func:`check_destination` (``require_marker=False`` skips the marker test, for a
    folder inside one dmfsharp owns). Stale staging folders of the same ``dest`` left by
    killed runs are removed first. The finished folder gets the :data:`MARKER` file and
    replaces an existing ``dest`` by an atomic exchange where the filesystem supports it,
    so ``dest`` never goes missing. On any error or signal the temporary folder is removed
    and ``dest`` is untouched. ``flag`` names the option that sets ``overwrite``.

    Parameters
    ----------
    dest : str or path-like
        The results folder to write.
    overwrite : bool, optional
        Whether an existing folder written by dmfsharp may be replaced.
    flag : str, optional
        The option that sets ``overwrite``, for messages.
    require_marker : bool, optional
        Whether ``dest`` must pass :func:`check_destination` (False for a folder inside
        one dmfsharp owns: then it only must not be a file).

    Yields
    ------
    pathlib.Path
        The temporary folder to fill.

    Raises
    ------
    DestinationError
        If ``dest`` may not be written (see :func:`check_destination`).
    OSError
        If the folder cannot be created or moved into place.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with staged_folder(pathlib.Path(tmp) / "run") as folder:
    ...         _ = (folder / "a.txt").write_text("done")
    ...     sorted(p.name for p in (pathlib.Path(tmp) / "run").iterdir())
    ['.dmfsharp-results', 'a.txt']
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
        mask = current_umask()
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
