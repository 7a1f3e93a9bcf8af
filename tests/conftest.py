import os
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite golden files instead of comparing with them")


@pytest.fixture
def golden(request):
    """``golden("name.txt", text)`` compares with (or, with --update-golden, rewrites) a file."""
    update = request.config.getoption("--update-golden") or os.environ.get("UPDATE_GOLDEN")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if not update:
                pytest.fail(f"golden file {name} was missing and has been written; rerun")
            return
        assert text == path.read_text(), f"output differs from golden file {name}"
    return check


@pytest.fixture
def rng():
    return np.random.default_rng(0)
