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
    code = SharedLibraryCode(path, lib, meta.get("sources", {}))
    return Module(code, info)
