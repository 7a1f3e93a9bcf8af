"""Search: the :class:`Tuner` loop, its strategies (random, grid, XGB, active, transfer),
simulated annealing over a cost model, the tuner registry and the transfer history."""
