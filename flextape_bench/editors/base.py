"""The editor interface, weight deltas, and hyperparameters loaded from YAML per editor and model family."""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import torch
import yaml

from flextape_bench.cases import EditRequest
from flextape_bench.errors import UserError
from flextape_bench.models.adapter import ModelAdapter

HPARAMS_DIR = Path(__file__).parent / "hparams"
WeightDelta = dict[str, torch.Tensor]  # parameter name -> additive change, on the parameter's device


@dataclasses.dataclass(frozen=True)
class EditorContext:
    """What an editor may need besides the model: the run's seed, the cache root (covariance statistics) and the
    fingerprint of the unedited weights (cache keys)."""

    seed: int
    cache: Path
    weights: str


class Editor(ABC):
    """Computes a `WeightDelta` for a batch of edits. It declares the parameters it may touch and never leaves the
    model edited: the runner applies the delta, scores, and restores the original weights."""

    hparams_class: ClassVar[type]

    def __init__(self, adapter: ModelAdapter, hparams: Any, context: EditorContext):
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


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings from `--hparams`; values are read as YAML (numbers, lists, booleans)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--hparams {pair!r}: expected KEY=VALUE, e.g. --hparams lr=1e-3")
        overrides[key.strip()] = _yaml_value(value)
    return overrides


def _yaml_value(text: str) -> Any:
    """A YAML scalar or list; also reads floats like 1e-3 that YAML 1.1 leaves as strings."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def hparams_file(editor: str, family: str) -> Path:
    """The packaged hparams YAML of an editor for a model family."""
    path = HPARAMS_DIR / editor / f"{family}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise UserError(
            f"editor {editor!r} has no hyperparameters for model family {family!r} (have: {', '.join(known)}); "
            f"add {path} or pass every value with --hparams"
        )
    return path


def build_hparams(cls: type, source: str, values: Mapping[str, Any]) -> Any:
    """Instantiate the hparams dataclass `cls`; unknown or missing keys name `source` and the valid keys."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"{source}: unknown hyperparameter(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
    missing = [
        name
        for name, f in fields.items()
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UserError(f"{source}: missing hyperparameter(s) {', '.join(missing)}")
    return cls(**values)


def check_overrides(editor: str, cls: type, overrides: Mapping[str, Any]) -> None:
    """Reject `--hparams` keys the editor does not have (called before any model loads)."""
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UserError(f"--hparams: unknown key(s) {', '.join(unknown)} for editor {editor!r}; valid: {', '.join(valid)}")


def load_hparams(editor: str, cls: type, family: str, overrides: Mapping[str, Any]) -> Any:
    """Hyperparameters from the editor's YAML for `family`, with `--hparams` overrides applied on top."""
    check_overrides(editor, cls, overrides)
    if not dataclasses.fields(cls):
        return cls()
    path = hparams_file(editor, family)
    with open(path) as handle:
        values = yaml.safe_load(handle) or {}
    return build_hparams(cls, str(path), {**values, **overrides})
