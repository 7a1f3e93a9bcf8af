"""The operator library: compute definitions plus tunable schedule templates.

Every template is a module with the same shape:

* a workload dataclass (shapes, dtype) with ``flop``;
* ``space(workload) -> dict[knob, list[value]]``: the legal values of every knob, and
  ``is_valid(workload, config)`` for cross-knob constraints (register budget, ...);
* ``default_config(workload)``: a heuristic config chosen from the shape and the machine;
* ``schedule(workload, config) -> (Schedule, args)`` and ``build(workload, config=None)``.

A config is a plain mapping knob -> value, so the tuner drives templates without a cycle.
"""
from tiletune.schedules import conv2d, conv2d_nchw, dense, depthwise
from tiletune.schedules.machine import Machine, host_machine

__all__ = ["Machine", "host_machine", "conv2d", "conv2d_nchw", "dense",
           "depthwise"]
