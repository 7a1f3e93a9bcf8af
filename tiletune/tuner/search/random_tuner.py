"""RandomTuner: uniform sampling of valid configs without replacement."""

from __future__ import annotations

from .tuner import Tuner


class RandomTuner(Tuner):
    """Proposes uniformly random valid, unvisited configs (seeded)."""

    def next_batch(self, n: int) -> list[int]:
        return self.space.sample(n, self.rng, exclude=self.visited)
