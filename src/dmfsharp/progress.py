"""One progress bar for every long-running command: tqdm, or plain text when it is missing.

tqdm (a dependency of the ``sweep`` extra) is imported lazily. Without it, or when the
stream is not a terminal, progress is written as plain lines at most every ``every``
seconds (10 s off a terminal), so logs of long runs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]


class Progress:
    """A progress bar over ``total`` units of work, written to ``stream``.

    Parameters
    ----------
    total : int
        Units of work (tasks, presets).
    desc : str
        Label shown before the bar.
    stream : text stream or None
        Where to write (default ``sys.stderr``); None turns the bar off.
    initial : int
        Units already done (a resumed sweep).
    unit : str
        Name of one unit.
    use_tqdm : bool
        Draw with tqdm when it is installed and ``stream`` is a terminal; otherwise
        (and always in logs) one plain line every few seconds.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with Progress(2, "demo", stream=out, use_tqdm=False) as bar:
    ...     bar.update(2)
    >>> out.getvalue().strip()
    'demo: 2/2 task (100%)'
    """

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        stream: TextIO | None = sys.stderr,
        initial: int = 0,
        unit: str = "task",
        use_tqdm: bool = True,
    ) -> None:
        self.total, self.desc, self.stream, self.unit = total, desc, stream, unit
        self.n = initial
        self.postfix = ""
        self._bar: Any = None
        tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._every = 0.5 if tty else 10.0
        self._last = time.perf_counter()
        if stream is None:
            return
        if use_tqdm and tty:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=total, initial=initial, desc=desc, unit=unit, file=stream, dynamic_ncols=True
                )

    def update(self, n: int = 1, postfix: str | None = None, *, label: str | None = None) -> None:
        """Advance by ``n`` units; ``postfix`` is shown after the bar, ``label`` replaces ``desc``."""
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        if label is not None:
            self.desc = label
        if self._bar is not None:
            if label is not None:
                self._bar.set_description_str(label, refresh=False)
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        if self.stream is not None and (now - self._last >= self._every or self.n >= self.total):
            self._last = now
            self._line()

    def _line(self) -> None:
        if self.stream is None:
            return
        pct = 100 * self.n // max(self.total, 1)
        extra = f" | {self.postfix}" if self.postfix else ""
        self.stream.write(f"{self.desc}: {self.n}/{self.total} {self.unit} ({pct}%){extra}\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
