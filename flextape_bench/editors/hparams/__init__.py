"""Editor hyperparameters: the packaged YAML of each editor and model family (`<editor>/<family>.yaml` in this
folder) with `--hparams KEY=VALUE` on top, read and checked by `flextape_bench.specfile` against the editor's hparams
dataclass: types, the `spec_field` checks and layer indices within the model's layer count, a bad value named by
file and line, or by the flag."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from flextape_bench.editors.base import Layer
from flextape_bench.errors import UserError
from flextape_bench.specfile import (
    Converter,
    Located,
    NoAliasLoader,
    Problem,
    Problems,
    SpecFileError,
    as_located,
    is_alias_error,
    parse_located,
    typed_fields,
)

HPARAMS_DIR = Path(__file__).parent
FLAG = "--hparams"


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings from `--hparams`; values are read as YAML (numbers, lists, booleans)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{FLAG} {pair!r}: expected KEY=VALUE, e.g. {FLAG} lr=1e-3")
        overrides[key.strip()] = _yaml_value(key.strip(), value)
    return overrides


def _yaml_value(key: str, text: str) -> Any:
    """A YAML scalar or list (no anchors or aliases); also reads floats like 1e-3 that YAML 1.1 leaves as strings."""
    try:
        value = yaml.load(text, Loader=NoAliasLoader)
    except (yaml.YAMLError, RecursionError) as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        if isinstance(exc, yaml.YAMLError) and is_alias_error(exc):
            problem = "YAML anchors (&name) and aliases (*name) are not allowed"
        raise UserError(
            f"{FLAG} {key}=...: the value is not valid YAML ({problem}); write e.g. "
            f"{FLAG} {key}=1e-3 or {FLAG} {key}=[1,2]"
        ) from None
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
            f"add {path} or pass every value with {FLAG}"
        )
    return path


def _converter(num_layers: int | None, command_line: bool) -> Converter:
    """A converter for hparams values: numbers kept as written (run records show them so), and each `Layer` within
    the model's `num_layers` where given."""

    def layer_problem(layer: int) -> str | None:
        if num_layers is None or 0 <= layer < num_layers:
            return None
        return f"layer {layer} does not exist: the model has {num_layers} layers (0-{num_layers - 1})"

    return Converter(Problems(), command_line=command_line, floats=False, type_checks={Layer: layer_problem})


def _flag(key: str, value: Any) -> Located:
    """A value typed as `--hparams KEY=VALUE`: it has no file and line, only the flag."""
    return as_located(value, Path(f"{FLAG} {key}"), 0)


def value_problem(cls: type, values: Mapping[str, Any], num_layers: int | None = None) -> tuple[str, str] | None:
    """The first (key, `key: problem`) among `values` (known keys of the hparams dataclass `cls`) whose value does not
    fit its field: its annotated type (layer indices within the model's `num_layers`, where given), then its rules."""
    converter = _converter(num_layers, command_line=True)
    fields = typed_fields(cls)
    for key, value in values.items():
        spec, tp = fields[key]
        converter.value(_flag(key, value), tp, key, spec)
        if converter.problems:
            return key, f"{converter.problems[0].key}: {converter.problems[0].message}"
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
        raise UserError(f"{FLAG}: unknown key(s) {', '.join(unknown)} for editor {editor!r}; valid: {', '.join(valid)}")
    found = value_problem(cls, overrides, num_layers)
    if found:
        key, problem = found
        raise UserError(f"{FLAG} {key}={_typed(overrides[key])}: {problem}")


def load_hparams(
    editor: str, cls: type, family: str, overrides: Mapping[str, Any], num_layers: int | None = None
) -> Any:
    """Hyperparameters from the editor's YAML for `family`, with `--hparams` overrides applied on top; every value
    checked as `check_overrides` checks, the first bad one in the file named by file, line and key (SpecFileError)."""
    check_overrides(editor, cls, overrides, num_layers)
    if not dataclasses.fields(cls):
        return cls()
    path = hparams_file(editor, family)
    root = parse_located(path, empty="write one `key: value` line per hyperparameter")
    flagged = {key: _flag(key, value) for key, value in overrides.items()}
    converter = _converter(num_layers, command_line=False)
    hparams = converter.spec_class(Located({**root.value, **flagged}, path, 1), cls, "")
    if converter.problems:
        first = converter.problems[0]
        field = first.key.split(".")[0].split("[")[0]
        hint = f"; override it with {FLAG} {field}=VALUE" if field in typed_fields(cls) else ""
        raise SpecFileError([Problem(first.file, first.line, first.key, first.message + hint)])
    return hparams
