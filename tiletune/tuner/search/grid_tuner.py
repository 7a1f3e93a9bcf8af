"""GridSearchTuner: every valid config in index order."""

from __future__ import annotations

from .tuner import Tuner


class GridSearchTuner(Tuner):
    """Proposes valid, unvisited configs in increasing index order."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - Tuner's signature
        super().__init__(*args, **kwargs)
        self._next = 0

    def next_batch(self, n: int) -> list[int]:
        out: list[int] = []
        total = len(self.space)
        while len(out) < n and self._next < total:
            i, self._next = self._next, self._next + 1
            if i not in self.visited and self.space.is_valid(i):
                out.append(i)
        return out

    def has_next(self) -> bool:
        return self._next < len(self.space) and super().has_next()
