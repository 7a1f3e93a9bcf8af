"""Graph passes, one per file; ``pipeline.PASSES`` lists them in order."""
from tiletune.graph.passes.pipeline import PASSES, PassContext, run_passes

__all__ = ["PASSES", "PassContext", "run_passes"]
