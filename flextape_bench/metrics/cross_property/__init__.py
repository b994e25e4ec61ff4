"""Cross-property drift: the metric (`metric`) and its preparation from the task's `cross_property` section
(`prepare`)."""

from flextape_bench.metrics.base import METRICS
from flextape_bench.metrics.cross_property.metric import RANKINGS, CrossPropertyDrift, prompt_key, top1
from flextape_bench.metrics.cross_property.prepare import NAME, CrossQuery

METRICS.add(
    NAME,
    CrossPropertyDrift(),
    description="top-1 candidate of the second property (summed log-probability; cross_property.ranking) "
    "after each generation prompt, pre and post: change rate, and accuracy where the subject's "
    "true value is known",
)

__all__ = ["RANKINGS", "CrossPropertyDrift", "CrossQuery", "prompt_key", "top1"]
