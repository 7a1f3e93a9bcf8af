"""``tiletune doctor``: versions, CPU, threads and the environment traps we know about."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from importlib import metadata

from tiletune.cli import common

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"


@dataclass
class Check:
    section: str
    name: str
    status: str
    value: str
    hint: str = ""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", parents=[common.global_options()],
                       help="check the installation, the CPU and the environment",
                       description="Versions, host CPU and features, thread settings and "
                       "known pitfalls. Exit code 0 unless something is broken.")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=run)


def _version(*dists: str) -> str | None:
    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return None


def versions() -> list[Check]:
    import tiletune

    out = [Check("versions", "tiletune", OK, tiletune.__version__),
           Check("versions", "python", OK, f"{platform.python_version()} "
                 f"({sys.executable})")]
    np_v = _version("numpy")
    out.append(Check("versions", "numpy", OK if np_v else FAIL, np_v or "missing",
                     "" if np_v else "pip install numpy"))
    try:
        import llvmlite
        import llvmlite.binding as llvm

        llvm_v = ".".join(map(str, llvm.llvm_version_info))
        out.append(Check("versions", "llvmlite", OK, f"{llvmlite.__version__} (LLVM {llvm_v})"))
    except Exception as e:  # noqa: BLE001 - report, do not crash
        out.append(Check("versions", "llvmlite", FAIL, f"unusable: {e}",
                         "pip install 'llvmlite>=0.50'"))
    xgb = _version("xgboost", "xgboost-cpu")
    out.append(Check("versions", "xgboost", OK if xgb else WARN,
                     xgb or "missing (NumPy fallback model)",
                     "" if xgb else "pip install xgboost-cpu for the XGBoost cost model"))
    for lib, dists in (("rich", ("rich",)), ("torch", ("torch",)),
                       ("onnxruntime", ("onnxruntime",))):
        v = _version(*dists)
        if v or lib == "rich":
            out.append(Check("versions", lib, OK if v else WARN, v or "missing"))
    return out


def cpu() -> list[Check]:
    out = []
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f
                          if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        from tiletune.backends.llvm.target import host

        triple, name, feats = host()
        flags = {f[1:] for f in feats.split(",") if f.startswith("+")}
        out.append(Check("cpu", "host", OK, f"{model or platform.processor() or '?'}; LLVM cpu "
                         f"{name}, {triple}"))
        simd = [x for x in ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vnni",
                            "avx2", "fma") if x in flags]
        has512 = "avx512f" in flags
        out.append(Check("cpu", "SIMD", OK if has512 or "avx2" in flags else WARN,
                         ", ".join(simd) or "none of avx2/avx512",
                         "" if has512 else "no AVX-512: 8-lane vectors, lower peak"))
        out.append(Check("cpu", "AVX-512", OK if has512 else INFO, "yes" if has512 else "no"))
        out.append(int8_check())
    except Exception as e:  # noqa: BLE001
        out.append(Check("cpu", "host", FAIL, f"LLVM cannot describe the host: {e}"))
    return out


def int8_check() -> Check:
    """Which u8 x s8 dot-product path the int8 kernels use on this host."""
    from tiletune.backends.llvm import int8dot

    path = int8dot.best_path()
    return Check("cpu", "int8 path", OK if path != "generic" else INFO,
                 f"{path}: {int8dot.describe(path)}")


def threads() -> list[Check]:
    from tiletune.runtime.threads import default_num_threads, find_libgomp

    env = os.environ.get("TILETUNE_NUM_THREADS")
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    out = [Check("threads", "cores", OK, f"{os.cpu_count()} CPUs, {affinity} usable"),
           Check("threads", "TILETUNE_NUM_THREADS", OK,
                 f"{env!r} -> {default_num_threads()} threads per kernel" if env else
                 f"unset -> {default_num_threads()} threads per kernel (all usable CPUs)")]
    gomp = find_libgomp()
    out.append(Check("threads", "libgomp", OK if gomp else WARN, gomp or "not found",
                     "" if gomp else "parallel loops fall back to a slower thread pool; "
                     "install libgomp1"))
    return out


def pitfalls() -> list[Check]:
    out = []
    core = os.environ.get("OPENBLAS_CORETYPE")
    out.append(Check("environment", "OPENBLAS_CORETYPE", WARN if core else OK,
                     repr(core) if core else "unset",
                     "forces OpenBLAS off its best kernel (Haswell on an AVX-512 CPU halves "
                     "NumPy's matmul speed): 'unset OPENBLAS_CORETYPE' before comparing "
                     "with NumPy" if core else ""))
    policy = os.environ.get("OMP_WAIT_POLICY", "")
    spin = os.environ.get("GOMP_SPINCOUNT", "")
    spinning = policy.lower() == "active" or spin.lower() == "infinite" or (
        spin.isdigit() and int(spin) > 1_000_000)
    if spinning:
        out.append(Check("environment", "OpenMP spinning", WARN,
                         f"OMP_WAIT_POLICY={policy!r} GOMP_SPINCOUNT={spin!r}",
                         "idle OpenMP threads spin and steal cores from the kernels being "
                         "timed: unset them (tiletune sets GOMP_SPINCOUNT=10000)"))
    else:
        out.append(Check("environment", "OpenMP spinning", OK,
                         f"OMP_WAIT_POLICY={policy or 'unset'} GOMP_SPINCOUNT={spin or 'unset'}"))
    omp = os.environ.get("OMP_NUM_THREADS")
    if omp:
        out.append(Check("environment", "OMP_NUM_THREADS", INFO, omp,
                         "limits NumPy/OpenMP libraries, not tiletune kernels (use "
                         "TILETUNE_NUM_THREADS)"))
    cc = next((shutil.which(c) for c in (os.environ.get("CC"), "cc", "gcc", "clang")
               if c and shutil.which(c)), None)
    out.append(Check("environment", "C compiler", OK if cc else WARN, cc or "missing",
                     "" if cc else "export_library('.so') needs cc/gcc/clang to link; "
                     ".o/.ll/.s still work"))
    return out


def smoke() -> list[Check]:
    """Build and run a tiny kernel: the JIT works end to end."""
    try:
        import numpy as np

        import tiletune as tt

        n = 64
        A = tt.placeholder((n,), "float32", name="A")
        B = tt.compute((n,), lambda i: A[i] * 2.0 + 1.0, name="B")
        s = tt.create_schedule(B)
        s[B].vectorize(s[B].split(s[B].axis[0], factor=16)[1])
        f = tt.build(s, [A, B], name="doctor_smoke")
        a = np.arange(n, dtype="float32")
        b = np.empty(n, "float32")
        f(a, b)
        ok = bool(np.allclose(b, a * 2 + 1))
        return [Check("compiler", "JIT smoke test", OK if ok else FAIL,
                      "built and ran a vectorized kernel" if ok else "WRONG RESULT")]
    except Exception as e:  # noqa: BLE001
        return [Check("compiler", "JIT smoke test", FAIL, f"{type(e).__name__}: {e}")]


def run(args: argparse.Namespace) -> int:
    checks = versions() + cpu() + pitfalls() + threads() + smoke()  # env before libgomp
    broken = [c for c in checks if c.status == FAIL]
    if args.json:
        print(json.dumps({"checks": [asdict(c) for c in checks], "broken": len(broken)},
                         indent=2))
        return 1 if broken else 0
    from rich.table import Table

    style = {OK: "green", WARN: "yellow", FAIL: "bold red", INFO: "cyan"}
    t = Table(title="tiletune doctor", title_justify="left")
    for col in ("", "check", "status", "value", "hint"):
        t.add_column(col, overflow="fold")
    section = None
    for c in checks:
        if args.quiet and c.status in (OK, INFO):
            continue
        t.add_row(c.section if c.section != section else "", c.name,
                  f"[{style[c.status]}]{c.status}[/]", c.value, c.hint)
        section = c.section
    common.stdout_console().print(t)
    warns = sum(c.status == WARN for c in checks)
    print(f"{len(broken)} broken, {warns} warning(s)")
    return 1 if broken else 0
