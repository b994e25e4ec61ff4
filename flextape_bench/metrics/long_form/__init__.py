"""Long-form generation: the metric (`metric`: distinct-n, n-gram entropy, reflected, flags) and its preparation
from the task's `long_form` section (`prepare`: prompts, decoding, lexicon)."""

from flextape_bench.metrics.base import METRICS
from flextape_bench.metrics.long_form.metric import (
    LongForm,
    distinct_n,
    fluency,
    ngram_entropy,
    ngrams,
    summarize,
    text_values,
    words,
)
from flextape_bench.metrics.long_form.prepare import NAME, LongFormQuery

METRICS.add(
    NAME,
    LongForm(),
    description="texts generated about the edited subject before and after the edit: distinct-n, n-gram "
    "entropy, edit reflected (target_new mentioned), keyword flags of the flaw categories",
)

__all__ = [
    "LongForm",
    "LongFormQuery",
    "distinct_n",
    "fluency",
    "ngram_entropy",
    "ngrams",
    "summarize",
    "text_values",
    "words",
]
