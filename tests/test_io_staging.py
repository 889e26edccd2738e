"""Results folders: atomic staging, the marker, overwrite by swap, stale staging, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmfsharp.staging import MARKER, DestinationError, remove_stale_staging, staged_folder

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _staging(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".old")))


def test_folder_is_written_whole_with_a_marker(tmp_path):
    with staged_folder(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("1")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "1"
    assert (tmp_path / "out" / MARKER).is_file()
    assert _staging(tmp_path) == []


def test_error_leaves_destination_untouched(tmp_path):
    with staged_folder(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_folder(tmp_path / "out", overwrite=True) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("boom")
    assert (tmp_path / "out" / "a.txt").read_text() == "old"
    assert _staging(tmp_path) == []


def test_overwrite_swaps_and_never_leaves_the_path_missing(tmp_path, monkeypatch):
    with staged_folder(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("old")
    seen = []
    real_rmtree = __import__("shutil").rmtree

    def watch(path, *a, **k):  # the old folder is removed only once the new one is in place
        seen.append((tmp_path / "out" / "a.txt").read_text())
        return real_rmtree(path, *a, **k)

    monkeypatch.setattr("dmfsharp.staging.shutil.rmtree", watch)
    with staged_folder(tmp_path / "out", overwrite=True) as tmp:
        (tmp / "a.txt").write_text("new")
    assert seen == ["new"]
    assert (tmp_path / "out" / "a.txt").read_text() == "new"
    assert _staging(tmp_path) == []


@pytest.mark.parametrize("case", ["unmarked", "cwd", "file"])
def test_refuses_what_dmfsharp_did_not_write(tmp_path, monkeypatch, case):
    target = tmp_path / "user"
    if case == "file":
        target.write_text("data")
    else:
        target.mkdir()
        (target / "thesis.tex").write_text("data")
    if case == "cwd":
        (target / MARKER).write_text("")
        monkeypatch.chdir(target)
        target = Path(".")
    with pytest.raises(DestinationError), staged_folder(target, overwrite=True):
        pass
    assert "data" in (
        (tmp_path / "user").read_text() if case == "file" else (tmp_path / "user" / "thesis.tex").read_text()
    )
    assert _staging(tmp_path) == []


def test_stale_staging_of_a_dead_process_is_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = tmp_path / ".out.abcd1234.tmp"
    stale.mkdir()
    (stale / ".dmfsharp-pid").write_text(str(pid))
    (stale / "big.bin").write_bytes(b"0" * 100)
    live = tmp_path / ".out.efgh5678.tmp"
    live.mkdir()
    (live / ".dmfsharp-pid").write_text(str(os.getppid()))
    other = tmp_path / ".other.abcd1234.tmp"
    other.mkdir()
    assert remove_stale_staging(tmp_path / "out") == [stale]
    assert live.exists() and other.exists()


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has installed its SIGTERM handler (Linux /proc), so main() runs."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_SLOW_ESCAPE = [
    "escape",
    "--dims",
    "20,40,20",
    "--iterations",
    "5000000",
    "--radius",
    "1e-12",
    "--step-multipliers",
    "0.5,0.6,0.7,0.8",
    "--escape-threshold",
    "1e6",
    "--no-figures",
    "--engine",
    "numpy",
]


# reproduce runs GD inside its staging folder, so a signal there must remove it
_SLOW_REPRODUCE = ["reproduce", "--presets", "fig7", "--iterations", "5000000", "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("argv", [_SLOW_ESCAPE, _SLOW_REPRODUCE], ids=["escape", "reproduce"])
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cleans_staging(tmp_path, argv, sig, code):
    if argv is _SLOW_REPRODUCE:
        pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dmfsharp", *argv, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test runner started in the background by a non-interactive shell ignores SIGINT,
        # and the child would inherit that (Python then installs no KeyboardInterrupt
        # handler): give the command the disposition a user's terminal gives it
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 30
    while not _catches_sigterm(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    while argv is _SLOW_REPRODUCE and not _staging(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and _staging(tmp_path) == []


@pytest.mark.slow
def test_kill_9_staging_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dmfsharp", *_SLOW_ESCAPE, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3.0)
    proc.kill()
    proc.wait()
    # the staging folder is created only when the run writes its folder; make one as a
    # killed run would leave it
    stale = tmp_path / ".run.zzzz9999.tmp"
    stale.mkdir()
    (stale / ".dmfsharp-pid").write_text(str(proc.pid))
    done = subprocess.run(
        [sys.executable, "-m", "dmfsharp", "escape", "--dims", "2,2,2", "--iterations", "5", "--no-figures"]
        + ["--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert _staging(tmp_path) == [] and (out / MARKER).is_file()
