"""SIGTERM and SIGHUP end a tuning session like Ctrl-C: records kept, summary printed.

    with stop_signals_interrupt():
        ...                       # a SIGTERM here raises Terminated (a KeyboardInterrupt)

The session catches :class:`KeyboardInterrupt` to write its partial summary; a
:class:`Terminated` carries the signal so the command exits with ``128 + signal`` (143 for
SIGTERM, 129 for SIGHUP) instead of 130. Handlers are only installed from the main thread
and only over the default disposition (a program's own handler is left alone).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """The session was asked to stop by ``signum`` (SIGTERM, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def interrupt_reason(exc: KeyboardInterrupt) -> str:
    """``"interrupted (Ctrl-C)"`` or ``"interrupted (SIGTERM)"``."""
    return f"interrupted ({exc.name})" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def _raise(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old: dict[int, object] = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            old[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
