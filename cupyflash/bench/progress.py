"""A one-line progress indicator on stderr (no tqdm dependency)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``[ 12/144]  35s  <label>``; rewritten in place on a terminal, one line
    per step otherwise (CI logs stay readable)."""

    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self.inplace = bool(getattr(self.stream, "isatty", lambda: False)())
        self._width = 0

    def step(self, label: str) -> None:
        """Announce the step about to run."""
        self.done += 1
        digits = len(str(self.total))
        elapsed = time.monotonic() - self.start
        line = f"[{self.done:>{digits}}/{self.total}] {elapsed:5.0f}s  {label}"
        if self.inplace:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.inplace and self._width:
            self.stream.write("\n")
            self.stream.flush()
