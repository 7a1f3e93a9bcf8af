"""Without --cluster, nothing imports Dask."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_local_session_never_imports_dask():
    code = ("import sys\n"
            "from tiletune.cli import build_parser\n"
            "from tiletune.tuner.session.tune import measurer_class\n"
            "build_parser()\n"
            "measurer_class('llvm')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("TILETUNE_CLUSTER", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
