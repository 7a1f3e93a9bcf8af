"""Module: a compiled kernel callable on NumPy arrays.

    f(a, b, c)                                        # checks every argument, then calls
    t = f.time_evaluator(number=10, repeat=3)(a, b, c)
    t.mean, t.median, t.min, t.results                # seconds per call
    f.get_source("ir" | "ll" | "ll-opt" | "asm")
    f.export_library("k.so")                          # also .o .ll .s
    f.set_num_threads(2)                              # threads per parallel region

The Module owns its code (a JIT engine, a loaded library, or Python-run code such as a
simulator): ``close()`` (or garbage collection, or leaving a ``with`` block) frees it.
``close()`` while other threads are inside the kernel waits for those calls to return
(calls that start afterwards raise "module ... is closed"), so code is never freed under a
running call.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tiletune.errors import TileTuneError
from tiletune.runtime import threads
from tiletune.runtime.args import ArgChecker
from tiletune.runtime.code import LoadedCode, PythonCode
from tiletune.runtime.info import ArgSpec, KernelInfo
from tiletune.runtime.timing import TimingResult, measure


@functools.cache
def _kernel_proto(nargs: int) -> Any:
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * nargs)


@functools.cache
def _timer_proto(nargs: int) -> Any:
    return ctypes.CFUNCTYPE(ctypes.c_double, *[ctypes.c_void_p] * nargs, ctypes.c_int64)


class Module:
    """A compiled kernel. Call it with one NumPy array per parameter, in order."""

    def __init__(self, code: LoadedCode, info: KernelInfo) -> None:
        self._code: LoadedCode | None = code
        self.info = info
        n = len(info.args)
        self._fn: Callable[..., None] | None = None
        self._timer: Callable[..., float] | None = None
        self._threads_addr: int | None = None
        self._error_addr: int | None = None  # i32 set by generated code on a failed malloc
        if code.native:
            self._fn = _kernel_proto(n)(code.address(info.symbol))
            if info.time_symbol:
                self._timer = _timer_proto(n)(code.address(info.time_symbol))
            if info.threads_symbol:
                self._threads_addr = code.address(info.threads_symbol)
            if info.extra.get("error_symbol"):
                self._error_addr = code.address(info.extra["error_symbol"])
        self._checker = ArgChecker(info.name, info.args)
        self._calls = threading.Condition()  # guards _active and the code's lifetime
        self._active = 0  # calls inside the kernel right now
        self._num_threads = 1
        self._write_threads(threads.default_num_threads())
        threads.register(self)

    # ------------------------------------------------------------------ description

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def args(self) -> tuple[ArgSpec, ...]:
        return self.info.args

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.info.outputs

    @property
    def config(self) -> dict | None:
        """The schedule config a library template built this kernel with (else None)."""
        return self.info.extra.get("config")

    @property
    def num_threads(self) -> int:
        return self._num_threads

    def __repr__(self) -> str:
        state = "closed" if self._code is None else f"threads={self._num_threads}"
        return f"<tiletune.Module {self.name}({self._checker.signature()}) {state}>"

    # ------------------------------------------------------------------ calling

    def __call__(self, *args: Any) -> None:
        addrs = self._checker.addresses(args)
        with self._in_call():
            fn = self._fn
            if fn is not None:
                fn(*addrs)
            else:
                self._run_python(args)

    @contextlib.contextmanager
    def _in_call(self) -> Iterator[None]:
        """Count a call in the kernel; ``close()`` waits until none is left."""
        with self._calls:
            self._live_code()  # raises once closed
            self._active += 1
        try:
            yield
        finally:
            with self._calls:
                self._active -= 1
                if not self._active:
                    self._calls.notify_all()
        self._raise_kernel_error()

    def _raise_kernel_error(self) -> None:
        """MemoryError when the kernel could not allocate a buffer (it then skipped the
        work that needed it; the outputs are incomplete); IndexError when a kernel built
        with ``bounds_check=True`` accessed a buffer out of bounds."""
        addr = self._error_addr
        if addr is None or self._code is None:
            return
        flag = ctypes.c_int32.from_address(addr)
        code, flag.value = flag.value, 0
        if code == 1:
            raise MemoryError(f"kernel {self.name} could not allocate a buffer "
                              "(aligned_alloc returned NULL); its outputs are incomplete")
        if code:
            raise IndexError(f"kernel {self.name} accessed a buffer out of bounds (built "
                             "with bounds_check=True); the bad accesses were skipped")

    def bind(self, *args: Any) -> Callable[[], None]:
        """Check the arguments once and return a call with no arguments that runs the kernel
        on them (no checks, no conversions: the arrays must stay alive and in place). A graph
        executor's precomputed call plan is a list of these."""
        addrs = self._checker.addresses(args)
        fn = self._fn
        if fn is None:
            return functools.partial(self._run_python, args)
        return functools.partial(fn, *addrs)

    def _run_python(self, args: Any) -> None:
        code = self._live_code()
        if not isinstance(code, PythonCode):
            raise TileTuneError(f"module {self.name} has no entry point")
        code.run(args)

    def time_evaluator(self, number: int = 10, repeat: int = 3, min_repeat_ms: float = 0,
                       flush_cache: bool = False) -> Callable[..., TimingResult]:
        """A function timing calls on given arrays: ``(*arrays) -> TimingResult``.

        One warm-up call, then ``repeat`` measurements of ``number`` calls each (``number``
        grows until a repeat lasts ``min_repeat_ms``); ``flush_cache`` evicts the CPU caches
        before each repeat. The loop runs in generated code: no Python overhead is timed.
        """
        if number < 1 or repeat < 1:
            raise ValueError("time_evaluator needs number >= 1 and repeat >= 1")

        def evaluate(*args: Any) -> TimingResult:
            addrs = self._checker.addresses(args)
            with self._in_call():
                return timed(addrs, args)

        def timed(addrs: Any, args: Any) -> TimingResult:
            fn, timer = self._fn, self._timer
            if fn is None:  # Python-run code times itself on the arrays
                code = self._live_code()
                if not isinstance(code, PythonCode):
                    raise TileTuneError(f"module {self.name} has no entry point")
                if code.simulated:
                    return measure(lambda n: code.time_per_call(args, n), (), number, repeat,
                                   0, False)
                self._run_python(args)
                return measure(lambda n: code.time_per_call(args, n), (), number, repeat,
                               min_repeat_ms, flush_cache)
            fn(*addrs)
            if timer is None:
                timer = _python_timer(fn)
            return measure(timer, addrs, number, repeat, min_repeat_ms, flush_cache)

        return evaluate

    def set_num_threads(self, n: int) -> None:
        """Threads per parallel region (1: parallel loops run in the calling thread)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"set_num_threads needs an int >= 1, got {n!r}")
        self._write_threads(threads.fork_limit(n) if self.info.parallel else n)

    def _write_threads(self, n: int) -> None:
        self._num_threads = n
        if self._threads_addr is not None and self._code is not None:
            ctypes.c_int32.from_address(self._threads_addr).value = n

    def _force_serial(self) -> None:
        """After fork (see ``runtime.threads``): parallel loops run in the calling thread."""
        if self.info.parallel:
            self._write_threads(1)

    # ------------------------------------------------------------------ sources, export

    def get_source(self, fmt: str = "ll") -> str:
        """"ir" (the loop nest), "ll" (generated LLVM IR), "ll-opt" (optimised IR), "asm"."""
        if fmt == "ir" and self.info.ir:
            return self.info.ir
        return self._live_code().source(fmt)

    def export_library(self, path: str | os.PathLike) -> None:
        """Save as ``.so`` (loadable with ``tiletune.runtime.load_module``), ``.o``, ``.ll`` or
        ``.s`` by extension."""
        self._live_code().export(os.fspath(path), self.info)

    # ------------------------------------------------------------------ lifetime

    def _live_code(self) -> LoadedCode:
        if self._code is None:
            raise TileTuneError(f"module {self.name} is closed")
        return self._code

    def close(self) -> None:
        """Free the machine code; the Module cannot be called afterwards. Waits for calls
        running in other threads to return first (new ones raise)."""
        calls = getattr(self, "_calls", None)
        if calls is None:  # __init__ did not get that far
            return
        with calls:
            code, self._code = self._code, None  # new calls now raise "closed"
            while self._active:
                calls.wait()
            self._fn = self._timer = None
            self._threads_addr = self._error_addr = None
        if code is not None:
            code.close()

    def __enter__(self) -> Module:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if sys.is_finalizing():
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _python_timer(fn: Callable[..., None]) -> Callable[..., float]:
    """Fallback when the code has no generated timing loop."""
    import time

    def timer(*args: Any) -> float:
        *addrs, number = args
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*addrs)
        return (time.perf_counter() - t0) / number

    return timer
