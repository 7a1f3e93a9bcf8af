"""The tuner registry: every tuner ``tiletune tune --tuner NAME`` knows, registered here.

A tuner is a factory ``factory(ctx: TunerContext) -> Tuner``. A new one is one
``@register_tuner("name", "what it does")`` function in this module (or, for experiments
such as the benchmarks' ablations, in the caller's own module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...errors import TuningError

if TYPE_CHECKING:
    from ..records.store import Record
    from ..space.config_space import ConfigSpace
    from ..templates.task import Task
    from .tuner import Tuner

DEFAULT_TRIALS = 256


@dataclass
class TunerContext:
    """What a tuner factory may use: the task, the seed, the trial budget, the history."""

    task: Task
    seed: int = 0
    n_trial: int = DEFAULT_TRIALS
    history: list[Record] = field(default_factory=list)  # --transfer-from records

    @property
    def space(self) -> ConfigSpace:
        return self.task.space


@dataclass(frozen=True)
class TunerEntry:
    factory: Callable[[TunerContext], Tuner]
    help: str
    uses_history: bool = False


TUNERS: dict[str, TunerEntry] = {}


def register_tuner(name: str, help: str, uses_history: bool = False  # noqa: A002
                   ) -> Callable[[Callable[[TunerContext], Tuner]], Callable]:
    """Decorator: ``@register_tuner("mine", "what it does")`` on ``factory(ctx) -> Tuner``."""
    def deco(factory: Callable[[TunerContext], Tuner]) -> Callable[[TunerContext], Tuner]:
        TUNERS[name] = TunerEntry(factory, help, uses_history)
        return factory
    return deco


def make_tuner(name: str, ctx: TunerContext) -> Tuner:
    """The registered tuner ``name`` for a context."""
    try:
        entry = TUNERS[name]
    except KeyError:
        raise TuningError(f"unknown tuner {name!r}; expected one of {', '.join(TUNERS)}"
                          ) from None
    return entry.factory(ctx)


def xgb_plan(n_trial: int) -> dict[str, int]:
    """XGBTuner sizes for a trial budget: model-guided after a quarter of it (8..64)."""
    n_initial = min(64, max(8, n_trial // 4))
    return {"plan_size": max(16, min(64, 2 * n_initial)), "n_initial": n_initial}


@register_tuner("xgb", "XGBoost rank model + search over it (AutoTVM's XGBTuner)")
def _xgb(ctx: TunerContext) -> Tuner:
    from .xgb_tuner import XGBTuner

    return XGBTuner(ctx.space, seed=ctx.seed, **xgb_plan(ctx.n_trial))


@register_tuner("random", "uniformly random valid configs")
def _random(ctx: TunerContext) -> Tuner:
    from .random_tuner import RandomTuner

    return RandomTuner(ctx.space, seed=ctx.seed)


@register_tuner("grid", "every valid config in index order")
def _grid(ctx: TunerContext) -> Tuner:
    from .grid_tuner import GridSearchTuner

    return GridSearchTuner(ctx.space, seed=ctx.seed)


@register_tuner("active", "active learning: BTED warm-up + bootstrap-UCB (BAO) plans")
def _active(ctx: TunerContext) -> Tuner:
    from .active import ActiveTuner

    return ActiveTuner(ctx.space, seed=ctx.seed, plan_size=xgb_plan(ctx.n_trial)["plan_size"])


@register_tuner("transfer", "transfer learning from --transfer-from records of other shapes "
                "of the same template (deep-kernel GP, ICCV'21)", uses_history=True)
def _transfer(ctx: TunerContext) -> Tuner:
    from .history import transfer_history
    from .transfer import TransferTuner

    featurize, history = transfer_history(ctx)
    return TransferTuner(ctx.space, history, featurize, seed=ctx.seed, method="gp",
                         plan_size=xgb_plan(ctx.n_trial)["plan_size"])


@register_tuner("xgb-lasso", "XGBTuner whose model is the Lasso (sparse linear, log "
                "throughput) for the first 48 trials, XGBoost afterwards")
def _xgb_lasso(ctx: TunerContext) -> Tuner:
    from ..models.lasso import StagedCostModel
    from .xgb_tuner import XGBTuner

    plan = xgb_plan(ctx.n_trial)
    return XGBTuner(ctx.space, seed=ctx.seed, cost_model=StagedCostModel(
        seed=ctx.seed, switch_at=48), **plan)


@register_tuner("transfer-xgb", "transfer learning from --transfer-from records: XGBoost "
                "on the history's knob features + shape descriptors, then boosted on "
                "its margin (AutoTVM's load_history)", uses_history=True)
def _transfer_xgb(ctx: TunerContext) -> Tuner:
    from .transfer import TransferTuner, transfer_data

    featurize, history = transfer_data(ctx, descriptors=True)
    return TransferTuner(ctx.space, history, featurize, seed=ctx.seed, method="xgb",
                         plan_size=xgb_plan(ctx.n_trial)["plan_size"])
