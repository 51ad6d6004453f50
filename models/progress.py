"""How far a long loop has got, for whoever watches: a hook that costs nothing unless installed.

A loop opens a meter, ``with meter("steps", total) as m: ... m.advance()``, and knows nothing
of where the reading goes. A command line installs one process-wide reporter
(:func:`set_reporter`) that draws bars or writes lines; without one every meter is a no-op.
Loops may run in several threads at once, so a reporter must be thread-safe; a meter itself
belongs to the one loop that opened it. This module imports nothing beyond the standard
library, so that the science in ``models/`` stays free of any display.
"""

from __future__ import annotations

from typing import Any, Protocol


class Reporter(Protocol):
    """Receives meters' readings; ``open`` returns a token the other two calls pass back."""

    def open(self, what: str, total: int | None, unit: str) -> Any: ...

    def update(self, token: Any, done: int, total: int | None) -> None: ...

    def close(self, token: Any) -> None: ...


_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> Reporter | None:
    """Install ``reporter`` for the whole process (None: none); returns the one it replaces."""
    global _reporter
    previous, _reporter = _reporter, reporter
    return previous


def reporting() -> bool:
    """Whether a reporter listens: a loop may skip work that only a reading needs."""
    return _reporter is not None


class Meter:
    """One loop's count of ``done`` out of ``total`` (None when unknown) ``unit``s."""

    def __init__(self, reporter: Reporter | None, what: str, total: int | None, unit: str):
        self.done, self.total = 0, total
        self._reporter = reporter
        self._token = reporter.open(what, total, unit) if reporter is not None else None

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self._reporter is not None:
            self._reporter.update(self._token, self.done, self.total)

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def close(self) -> None:
        """Done with (twice is harmless): the reporter forgets it."""
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            reporter.close(self._token)

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def meter(what: str, total: int | None = None, unit: str = "") -> Meter:
    """A meter on the installed reporter; ``what`` names the loop (``steps``, ``encode texts``),
    ``unit`` what it counts, if not said by ``what``."""
    return Meter(_reporter, what, total, unit)
