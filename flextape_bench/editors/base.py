"""The editor interface, and what hyperparameter declarations share: layer indices and the corpus and template
checks."""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, NewType, TypeVar

from flextape_bench.cases import EditRequest
from flextape_bench.models.adapter import ModelAdapter

# hparams fields are declared as task spec fields are: `spec_field(doc, check=...)`, read by flextape_bench.specfile
from flextape_bench.specfile import at_least_zero, positive, spec_field  # noqa: F401
from flextape_bench.weights import WeightDelta

Layer = NewType("Layer", int)  # a decoder layer index, 0 to the model's layer count - 1


def corpus(value: str) -> str | None:
    """A text corpus of covariance.py: wikipedia, model (sampled from the model) or file:PATH of an existing file."""
    if value in ("wikipedia", "model"):
        return None
    if not value.startswith("file:"):
        return f"{value!r} is not one of wikipedia, model, file:PATH"
    if Path(value[5:]).is_file():
        return None
    return f"{value[5:]} is not a file; give a UTF-8 text file (paragraphs are samples)"


def corpus_length(dataset: str, max_tokens: int | None) -> list[tuple[str, str]]:
    """The (field, problem) of a statistics corpus without a sample length: text sampled from the model (`model`) is
    `mom2_max_tokens` tokens long, so it needs one (a hparams class's `cross_check`, before any model loads)."""
    if dataset == "model" and max_tokens is None:
        return [
            ("mom2_max_tokens", "mom2_dataset=model samples texts of mom2_max_tokens tokens; set a number, e.g. 64")
        ]
    return []


class StatisticsCorpus:
    """The cross-field check of hyperparameters that declare a key statistics' corpus (fields `mom2_dataset` and
    `mom2_max_tokens`); fieldless, so a dataclass inheriting it keeps its own fields and their order."""

    mom2_dataset: str
    mom2_max_tokens: int | None

    def cross_check(self) -> list[tuple[str, str]]:
        return corpus_length(self.mom2_dataset, self.mom2_max_tokens)


def length_count(value: list[int]) -> str | None:
    """A [length, count] pair of context templates: `count` texts of `length` tokens."""
    if len(value) == 2 and value[0] >= 1 and value[1] >= 0:
        return None
    return f"{value} is not a [length, count] pair of a length of 1 or more and a count of 0 or more, e.g. [10, 5]"


@dataclasses.dataclass(frozen=True)
class EditorContext:
    """What an editor may need besides the model: the run's seed, the cache root (covariance statistics) and the
    fingerprint of the unedited weights (cache keys)."""

    seed: int
    cache: Path
    weights: str


H = TypeVar("H")  # an editor's hyperparameter dataclass


class Editor(ABC, Generic[H]):
    """Computes a `WeightDelta` for a batch of edits. It declares the parameters it may touch and never leaves the
    model edited: the runner applies the delta, scores, and restores the original weights. An editor names its
    hyperparameter dataclass as its type argument (`class ROMEEditor(Editor[ROMEHparams])`), which is also its
    `hparams_class`."""

    hparams_class: ClassVar[type]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):  # its own bases, as written
            arguments = typing.get_args(base)
            if arguments and isinstance(arguments[0], type):  # a dataclass, not a type variable
                cls.hparams_class = arguments[0]

    def __init__(self, adapter: ModelAdapter, hparams: H, context: EditorContext):
        self.adapter = adapter
        self.hparams = hparams
        self.context = context

    @abstractmethod
    def declared_parameters(self) -> list[str]:
        """Names of the parameters this editor's deltas may contain."""

    @abstractmethod
    def compute_delta(self, requests: Sequence[EditRequest]) -> WeightDelta:
        """The weight change that makes the model hold every request's new target."""

    def start_sequence(self) -> None:
        """A new sequence of kept edits begins (each task of a run); editors that account for earlier edits forget
        them."""

    def keep_last(self) -> None:
        """The runner kept the last computed delta in the model (sequential editing)."""

    def run_record(self) -> dict[str, Any]:
        """What a run's config should record about this editor beyond its hyperparameters."""
        return {}
