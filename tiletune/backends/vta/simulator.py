"""The simulator: fetch plus three modules exchanging dependency tokens, timed and checked.

A run is a dataflow network of four processes: *fetch* dispatches the stream in order into
the load, compute and store command queues (``queue_depth`` entries each; it stalls on a
full queue), and each *module* executes its queue in order.  Before an instruction starts,
the module pops every flagged token queue and needs room in every flagged push queue
(``token_queue_depth``); it pushes when the instruction ends.  Token queues: ``l2g``
(load->compute), ``g2l`` (compute->load), ``g2s`` (compute->store), ``s2g`` (store->compute).

Any process that can move may move: ``order="program"`` always steps the ready process whose
next instruction comes first in the stream, ``order="random"`` picks one at random (seeded).
With correct tokens both give identical DRAM contents, SRAM state and cycle counts: the
timing of every event is computed from the events it depends on, never from the order the
simulator happens to visit them in.  Errors (all ``VTAError``):

* ``deadlock: ...`` when no process can move before the stream is done; lists every
  module's head instruction and what it waits for.
* ``dangling dependency tokens ...`` when the run ends with tokens left in a queue (they
  would leak into the next run on hardware).
* ``missing dependency token ...`` from the happens-before checker (hazards.py), for a race
  between modules on an SRAM entry or a FINISH not ordered after every load and store.
* index and DMA range errors from the datapath.

``mode="cycles"`` skips all data movement and arithmetic (micro-ops are still loaded) but
keeps every index, range, dependency and timing check.
"""

from __future__ import annotations

import random
from collections import deque
from typing import NamedTuple

from tiletune.backends.vta.config import DEFAULT_CONFIG, VTAConfig
from tiletune.backends.vta.cycles import SimReport, fetch_cycles, instruction_cycles
from tiletune.backends.vta.datapath import Datapath
from tiletune.backends.vta.dram import DRAM
from tiletune.backends.vta.hazards import HazardChecker
from tiletune.backends.vta.isa import Finish, HardwareModule, Instruction
from tiletune.backends.vta.program import Program
from tiletune.errors import VTAError

_L, _C, _S = HardwareModule.LOAD, HardwareModule.COMPUTE, HardwareModule.STORE
POPS = {(_L, "pop_next"): "g2l", (_C, "pop_prev"): "l2g", (_C, "pop_next"): "s2g",
        (_S, "pop_prev"): "g2s"}
PUSHES = {(_L, "push_next"): "l2g", (_C, "push_prev"): "g2l", (_C, "push_next"): "g2s",
          (_S, "push_prev"): "s2g"}
QUEUE_NAMES = {"l2g": "load->compute", "g2l": "compute->load", "g2s": "compute->store",
               "s2g": "store->compute"}
FETCH = -1  # process id of the fetch module (modules are 0, 1, 2)


class _Token(NamedTuple):
    time: int
    clock: tuple[int, ...]
    pusher: int  # stream index


class Simulator:
    """Runs Programs on a simulated VTA; see the module docstring."""

    def __init__(self, config: VTAConfig = DEFAULT_CONFIG) -> None:
        self.config = config

    def run(self, program: Program, dram: DRAM | None = None, *, mode: str = "full",
            order: str = "program", seed: int = 0) -> SimReport:
        """Execute ``program`` against ``dram``; return counters and the cycle count."""
        if mode not in ("full", "cycles"):
            raise VTAError(f"mode must be 'full' or 'cycles', got {mode!r}")
        if order not in ("program", "random"):
            raise VTAError(f"order must be 'program' or 'random', got {order!r}")
        if program.config != self.config:
            raise VTAError("the program was built for a different VTAConfig than the simulator")
        dram = DRAM(self.config) if dram is None else dram
        if dram.config != self.config:
            raise VTAError("the DRAM was made for a different VTAConfig than the simulator")
        datapath = Datapath(self.config, dram, program.uops, compute=mode == "full")
        run = _Run(self.config, program.instructions, datapath)
        rng = random.Random(seed) if order == "random" else None
        while True:
            ready = run.ready()
            if not ready:
                break
            run.step(rng.choice(ready) if rng else min(ready, key=run.next_index))
        run.finish()
        run.report.datapath = datapath
        return run.report


class _Run:
    """The state of one run: queues, tokens, clocks, timing."""

    def __init__(self, config: VTAConfig, insns: tuple[Instruction, ...],
                 datapath: Datapath) -> None:
        self.config, self.insns, self.datapath = config, insns, datapath
        self.module_of = [insn.module for insn in insns]
        self.queue: dict[HardwareModule, list[int]] = {m: [] for m in HardwareModule}
        for i, m in enumerate(self.module_of):
            self.queue[m].append(i)
        self.pops = [[q for (m, f), q in POPS.items() if m == insn.module and getattr(insn, f)]
                     for insn in insns]
        self.pushes = [[q for (m, f), q in PUSHES.items() if m == insn.module and getattr(insn, f)]
                       for insn in insns]
        self.pos = dict.fromkeys(HardwareModule, 0)  # next instruction of each module
        self.dispatched = dict.fromkeys(HardwareModule, 0)
        self.fetched = 0
        self.fetch_free = 0
        self.module_free = dict.fromkeys(HardwareModule, 0)
        self.tokens: dict[str, deque[_Token]] = {q: deque() for q in QUEUE_NAMES}
        self.pushed = dict.fromkeys(QUEUE_NAMES, 0)
        self.pop_times: dict[str, list[int]] = {q: [] for q in QUEUE_NAMES}
        self.dispatch_time = [0] * len(insns)
        self.report = SimReport(timeline=[(0, 0)] * len(insns))
        self.hazards = HazardChecker(config, self.describe_seq)

    def describe(self, i: int) -> str:
        return f"{self.module_of[i].label} #{i} `{self.insns[i]}`"

    def describe_seq(self, module: HardwareModule, seq: int) -> str:
        return self.describe(self.queue[module][seq - 1])

    # -- scheduling -----------------------------------------------------------------------
    def next_index(self, process: int) -> int:
        if process == FETCH:
            return self.fetched
        return self.queue[HardwareModule(process)][self.pos[process]]

    def ready(self) -> list[int]:
        out = []
        depth = self.config.queue_depth
        if self.fetched < len(self.insns):
            m = self.module_of[self.fetched]
            if self.dispatched[m] - self.pos[m] < depth:
                out.append(FETCH)
        for m in HardwareModule:
            if self.pos[m] < self.dispatched[m] and self._tokens_ready(self.queue[m][self.pos[m]]):
                out.append(int(m))
        return out

    def _tokens_ready(self, i: int) -> bool:
        depth = self.config.token_queue_depth
        return (all(self.tokens[q] for q in self.pops[i])
                and all(len(self.tokens[q]) < depth for q in self.pushes[i]))

    def step(self, process: int) -> None:
        if process == FETCH:
            self._fetch()
        else:
            self._execute(HardwareModule(process))

    def _fetch(self) -> None:
        i = self.fetched
        m = self.module_of[i]
        k = self.dispatched[m]
        slot_free = 0
        if k >= self.config.queue_depth:  # the slot frees when that instruction starts
            slot_free = self.report.timeline[self.queue[m][k - self.config.queue_depth]][0]
        self.fetch_free = max(self.fetch_free, slot_free) + fetch_cycles(self.config)
        self.dispatch_time[i] = self.fetch_free
        self.dispatched[m] += 1
        self.fetched += 1

    def _execute(self, m: HardwareModule) -> None:
        i = self.queue[m][self.pos[m]]
        insn = self.insns[i]
        start = max(self.module_free[m], self.dispatch_time[i])
        for q in self.pops[i]:
            token = self.tokens[q].popleft()
            start = max(start, token.time)
            self.hazards.pop(m, token.clock)
        depth = self.config.token_queue_depth
        for q in self.pushes[i]:  # room: the pop that freed the slot
            if self.pushed[q] >= depth:
                start = max(start, self.pop_times[q][self.pushed[q] - depth])
        for q in self.pops[i]:
            self.pop_times[q].append(start)
        seq = self.hazards.tick(m)
        accesses = self.datapath.execute(insn, self.describe(i))
        self.hazards.access(m, seq, accesses)
        if isinstance(insn, Finish):
            self.hazards.check_finish({mod: len(self.queue[mod]) for mod in HardwareModule}, seq)
        cycles = instruction_cycles(insn, self.config)
        end = start + cycles
        self.module_free[m] = end
        self.report.timeline[i] = (start, end)
        self.report.count(insn, m, cycles, self.config)
        self.report.cycles = max(self.report.cycles, end)
        for q in self.pushes[i]:
            self.tokens[q].append(_Token(end, self.hazards.token(m), i))
            self.pushed[q] += 1
        self.pos[m] += 1

    # -- end of run -----------------------------------------------------------------------
    def finish(self) -> None:
        if self.fetched < len(self.insns) or any(
                self.pos[m] < len(self.queue[m]) for m in HardwareModule):
            raise VTAError("deadlock: no module can proceed\n" + "\n".join(self._blocked()))
        left = {q: t for q, t in self.tokens.items() if t}
        if left:
            parts = [f"{q} ({QUEUE_NAMES[q]}) holds {len(t)} token(s), the first pushed by "
                     f"{self.describe(t[0].pusher)}" for q, t in left.items()]
            raise VTAError("dangling dependency tokens at the end of the run (pushed, never "
                           "popped): " + "; ".join(parts))

    def _blocked(self) -> list[str]:
        lines = []
        for m in HardwareModule:
            if self.pos[m] == len(self.queue[m]):
                lines.append(f"  {m.label}: done ({len(self.queue[m])} instructions)")
                continue
            i = self.queue[m][self.pos[m]]
            if self.pos[m] == self.dispatched[m]:
                lines.append(f"  {m.label}: next is {self.describe(i)}, not fetched yet")
                continue
            waits = [f"a token on {q} ({QUEUE_NAMES[q]}), which is empty"
                     for q in self.pops[i] if not self.tokens[q]]
            waits += [f"room in {q} ({QUEUE_NAMES[q]}), which is full"
                      for q in self.pushes[i]
                      if len(self.tokens[q]) >= self.config.token_queue_depth]
            lines.append(f"  {m.label}: {self.describe(i)} waits for {' and '.join(waits)}")
        if self.fetched < len(self.insns):
            m = self.module_of[self.fetched]
            lines.append(f"  fetch: {self.describe(self.fetched)} waits for room in the "
                         f"{m.label} command queue ({self.config.queue_depth} entries, full)")
        tokens = ", ".join(f"{q}={len(t)}" for q, t in self.tokens.items())
        lines.append(f"  token queues: {tokens}")
        return lines
