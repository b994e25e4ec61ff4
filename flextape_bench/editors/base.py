"""The editor interface, weight deltas, and hyperparameters loaded from YAML per editor and model family."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping, NewType, Sequence

import torch
import yaml

from flextape_bench.cases import EditRequest
from flextape_bench.errors import UserError
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.tasks.loader import NoAliasLoader, describe_value
# hparams fields are declared as task spec fields are: `spec_field(doc, check=...)`, with spec.py's checks
from flextape_bench.tasks.spec import at_least_zero, positive, spec_field  # noqa: F401

HPARAMS_DIR = Path(__file__).parent / "hparams"
WeightDelta = dict[str, torch.Tensor]  # parameter name -> additive change, on the parameter's device
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
        overrides[key.strip()] = _yaml_value(key.strip(), value)
    return overrides


def _yaml_value(key: str, text: str) -> Any:
    """A YAML scalar or list (no anchors or aliases); also reads floats like 1e-3 that YAML 1.1 leaves as strings."""
    try:
        value = yaml.load(text, Loader=NoAliasLoader)
    except (yaml.YAMLError, RecursionError) as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        if problem == "anchor or alias":
            problem = "YAML anchors (&name) and aliases (*name) are not allowed"
        raise UserError(f"--hparams {key}=...: the value is not valid YAML ({problem}); write e.g. "
                        f"--hparams {key}=1e-3 or --hparams {key}=[1,2]") from None
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


def _scalar_problem(value: Any, tp: type) -> str | None:
    """What is wrong with `value` as a bool, int, float or str (`tp`), or None."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is float and number and not math.isfinite(value):
        return f"expected a finite number, got {describe_value(value)}"
    fits = {bool: isinstance(value, bool), int: number and isinstance(value, int), float: number,
            str: isinstance(value, str)}
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    return None if fits[tp] else f"expected {expected[tp]}, got {describe_value(value)}"


def _type_problem(key: str, value: Any, tp: Any, num_layers: int | None) -> str | None:
    """`key: problem` where `value` does not fit the annotation `tp` (a Layer also the model's `num_layers`)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return None if value is None else _type_problem(key, value, inner, num_layers)
    if origin is list:
        if not isinstance(value, list):
            return f"{key}: expected a list, got {describe_value(value)}; write e.g. [1, 2]"
        (item_type,) = typing.get_args(tp)
        problems = (_type_problem(f"{key}[{i}]", item, item_type, num_layers) for i, item in enumerate(value))
        return next((problem for problem in problems if problem), None)
    if origin is typing.Literal:
        options = typing.get_args(tp)
        return None if value in options else f"{key}: {describe_value(value)} is not one of {', '.join(options)}"
    problem = _scalar_problem(value, getattr(tp, "__supertype__", tp))  # a Layer is an int
    if not problem and tp is Layer and num_layers is not None and not 0 <= value < num_layers:
        problem = f"layer {value} does not exist: the model has {num_layers} layers (0-{num_layers - 1})"
    return f"{key}: {problem}" if problem else None


def _field_problem(key: str, value: Any, field: dataclasses.Field) -> str | None:
    """`key: problem` from the rules `spec_field` declares, applied as for task specs: `nonempty`, and `check` on
    each item of a list (or on the value)."""
    if value == [] and field.metadata.get("nonempty"):
        return f"{key}: the list is empty; name at least one"
    check = field.metadata.get("check")
    items = [(f"{key}[{i}]", item) for i, item in enumerate(value)] if isinstance(value, list) else [(key, value)]
    problems = (f"{where}: {found}" for where, item in items if check and item is not None and (found := check(item)))
    return next(problems, None)


def value_problem(cls: type, values: Mapping[str, Any], num_layers: int | None = None) -> tuple[str, str] | None:
    """The first (key, `key: problem`) among `values` (known keys of the hparams dataclass `cls`) whose value does not
    fit its field: its annotated type (layer indices within the model's `num_layers`, where given), then its rules."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        problem = _type_problem(key, value, hints[key], num_layers) or _field_problem(key, value, fields[key])
        if problem:
            return key, problem
    return None


def _typed(value: Any) -> str:
    """A `--hparams` value as it may have been typed."""
    if isinstance(value, (str, float)):
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def check_overrides(editor: str, cls: type, overrides: Mapping[str, Any], num_layers: int | None = None) -> None:
    """Reject `--hparams` keys the editor does not have, and values of the wrong type or out of range (layer
    indices with the model's `num_layers`); called before any model loads."""
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UserError(f"--hparams: unknown key(s) {', '.join(unknown)} for editor {editor!r}; valid: {', '.join(valid)}")
    found = value_problem(cls, overrides, num_layers)
    if found:
        key, problem = found
        raise UserError(f"--hparams {key}={_typed(overrides[key])}: {problem}")


def load_hparams(editor: str, cls: type, family: str, overrides: Mapping[str, Any], num_layers: int | None = None
                 ) -> Any:
    """Hyperparameters from the editor's YAML for `family`, with `--hparams` overrides applied on top; every value
    checked as `check_overrides` checks, a bad one in the file named by file and line."""
    check_overrides(editor, cls, overrides, num_layers)
    if not dataclasses.fields(cls):
        return cls()
    path = hparams_file(editor, family)
    text = path.read_text(encoding="utf-8")
    values = yaml.load(text, Loader=NoAliasLoader) or {}
    hparams = build_hparams(cls, str(path), {**values, **overrides})
    found = value_problem(cls, {k: v for k, v in values.items() if k not in overrides}, num_layers)
    if found:
        key, problem = found
        keys = yaml.compose(text, Loader=NoAliasLoader).value
        line = next(node.start_mark.line + 1 for node, _ in keys if node.value == key)
        raise UserError(f"{path}:{line}: {problem}; override it with --hparams {key}=VALUE")
    return hparams
