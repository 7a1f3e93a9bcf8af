"""load_module: open an exported kernel library without the compiler."""
from __future__ import annotations

import ctypes
import json
import os

from tiletune.errors import TileTuneError
from tiletune.runtime.code import SharedLibraryCode
from tiletune.runtime.info import METADATA_SYMBOL, METADATA_VERSION, KernelInfo
from tiletune.runtime.module import Module
from tiletune.runtime.threads import prepare_gomp_env


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return {x.replace("_", "") for x in line.split(":", 1)[1].split()}
    except OSError:
        pass
    return None


def _check_cpu(path: str, extra: dict) -> None:
    """Refuse a library compiled for CPU features this machine lacks (it would SIGILL)."""
    flags = _cpu_flags()
    if flags is None:
        return
    missing = [f for f in extra.get("features", []) if f.replace("_", "") not in flags]
    if missing:
        raise TileTuneError(f"{path} was compiled for {extra.get('cpu', 'another CPU')} and "
                            f"uses {', '.join(missing)}, which this CPU lacks; rebuild it here")


def load_module(path: str | os.PathLike) -> Module:
    """Load a ``.so`` written by ``Module.export_library``; same checks and timing as the JIT."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise TileTuneError(f"no kernel library at {path}")
    prepare_gomp_env()
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise TileTuneError(f"cannot load {path}: {exc}") from exc
    try:
        raw = ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(lib, METADATA_SYMBOL)))
    except ValueError as exc:
        raise TileTuneError(f"{path} is not a tiletune kernel library (no metadata)") from exc
    try:
        meta = json.loads(raw.decode("utf-8"))
        if meta.get("version") != METADATA_VERSION:
            raise TileTuneError(f"{path} has metadata version {meta.get('version')}, "
                                f"this runtime reads version {METADATA_VERSION}")
        info = KernelInfo.from_dict(meta)
    except (ValueError, KeyError, TypeError) as exc:
        raise TileTuneError(f"{path} has unreadable metadata: {exc}") from exc
    _check_cpu(path, info.extra)
    code = SharedLibraryCode(path, lib, meta.get("sources", {}))
    return Module(code, info)
