"""What a metric is: a plugin that declares its work and never runs a model itself.

The runner asks each metric of a task, by these hooks only (it knows no metric by name):

1. `preparation` (before the model loads): an object whose `prepare(spec, cases, metrics, options)` attaches what
   the metric asks about to the cases (`EditCase.queries[name]`), and returns what the run records (`Prepared`).
   Metrics that share one preparation (the group shifts share the demographic labels) name the same object; it runs
   once per task.
2. Requests per case: `score_requests(case)` (prompts with the continuations to score, after the case's edit prompt
   and probes) and `text_requests(case)` (prompts and a sample count, generated with `decoding(spec)`).
3. `case(case, pre, post)`: the case's values from its answers. `pre`/`post` hold the edit and probe scores, and in
   `generation`/`texts` the answers to this metric's own requests, in request order.
4. `aggregate(per_case)`: the task's values; `samples(record)`: the metric's lines of samples.jsonl, read from a
   written case record; `record(case)`: what the case record keeps of the metric's query; `warnings(values)`: what
   the values say went wrong with the edits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from flextape_bench.cases import CaseScores, EditCase, ScoreRequest
from flextape_bench.registry import METRICS as _REGISTERED
from flextape_bench.registry import Registry

if TYPE_CHECKING:
    from flextape_bench.generation import Decoding
    from flextape_bench.tasks.spec import TaskSpec


class Options(Protocol):
    """What a preparation may read of the run's options (`runner.RunOptions`)."""

    tasks: Sequence[str]
    seed: int
    data_dir: Path | None
    cache: Path
    lexicons: Sequence[Path]


@dataclass(frozen=True)
class Prepared:
    """A task's cases after a preparation, and what the run records of it, in entries keyed as they appear:
    `summary` in the task's summary; `identity` (what changes results beyond the spec hash) and `config` in
    config.json, each as {key: this task's value}. `state`: whatever the preparation's `summary` needs later.
    `missing`: what the metrics will lack (one sentence each), listed before the run starts."""

    cases: list[EditCase]
    summary: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    missing: tuple[str, ...] = ()


class Preparation:
    """Per-task work done before the model loads."""

    def prepare(
        self, spec: TaskSpec, cases: Sequence[EditCase], metrics: Sequence[Metric], options: Options
    ) -> Prepared:
        """The cases with what the task's `metrics` that share this preparation ask about."""
        raise NotImplementedError

    def summary(self, prepared: Prepared, eos_token_ids: Sequence[int]) -> dict[str, Any]:
        """Entries of the task's summary (the model's EOS ids are known by then)."""
        return prepared.summary

    def check_run(self, options: Options, used: bool) -> None:
        """A check of the run's options against whether any task uses this preparation (`used`)."""


class Metric:
    """Base of every metric. The defaults ask for nothing beyond the edit and probe scores."""

    preparation: Preparation | None = None

    def score_requests(self, case: EditCase) -> list[ScoreRequest]:
        """Prompts with the continuations to score, in the case's own batch group (`cases.case_group`)."""
        return []

    def decoding(self, spec: TaskSpec) -> Decoding | None:
        """How this metric's texts of the task are generated; None: it asks for no text."""
        return None

    def text_requests(self, case: EditCase) -> tuple[tuple[str, ...], int]:
        """The prompts to generate from and the number of texts per prompt."""
        return (), 0

    def checked_targets(self, cases: Sequence[EditCase]) -> list[tuple[str, str, str]]:
        """(where, prompt, target) of the targets that must give a token, beyond the rewrite's two."""
        return []

    def record(self, case: EditCase) -> dict[str, Any]:
        """Entries of the case record that describe this metric's requests."""
        return {}

    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        """JSON-ready values for one case."""
        raise NotImplementedError

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Task-level values from every case's values."""
        raise NotImplementedError

    def samples(self, record: dict[str, Any]) -> Iterable[dict[str, Any]]:
        """Lines of samples.jsonl beyond the edit prompt's and the probes'."""
        return ()

    def warnings(self, values: dict[str, Any]) -> list[str]:
        """What the task's aggregated `values` say went wrong with the edits, one sentence each (asked only of runs
        that edit; kept in the summary and shown after the tables)."""
        return []


METRICS: Registry[Metric] = _REGISTERED  # the metric registry, typed; metric modules add themselves to it
