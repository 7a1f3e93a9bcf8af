import time
from pathlib import Path

import pytest

SMALL = Path(__file__).parent / "data" / "small.jsonl"


@pytest.fixture
def utc(monkeypatch):
    """Local time = UTC (the schedule code's comment shows the record's date)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="session")
def small_records() -> Path:
    return SMALL
