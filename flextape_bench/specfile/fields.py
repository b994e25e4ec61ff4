"""The field schema of typed spec files: dataclass fields declared with `spec_field(doc, ...)`, and shared checks."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]  # what is wrong with a value, or None


def spec_field(
    doc: str,
    *,
    default: Any = dataclasses.MISSING,
    check: Check | None = None,
    nonempty: bool = False,
    yaml: bool = True,
    hash_none: bool = True,
    hashed: bool = True,
    option: bool = False,
) -> Any:
    """A dataclass field carrying its documentation and validation rules (checks apply per item of a list).

    `hash_none=False` leaves the field out of `spec_hash` while it is None, so that adding an optional section
    keeps the hash (and the cached pre-edit scores) of every spec that does not use it. `hashed=False` leaves it
    out always: for settings that change no score or generated text (the run identity records them instead).
    `option=True` marks a metric option (how scores become metric values): not hashed, and recorded in the run
    identity by `metric_options`. `yaml=False` marks a field set by the loader, not read from the file.
    """
    metadata = {
        "doc": doc,
        "check": check,
        "nonempty": nonempty,
        "yaml": yaml,
        "hash_none": hash_none,
        "hashed": hashed and not option,
        "option": option,
    }
    return dataclasses.field(default=default, metadata=metadata)


def yaml_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a spec class that are read from YAML."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)]


def typed_fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Each YAML field of a spec class by name, with its resolved type annotation."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in yaml_fields(cls)}


def required(field: dataclasses.Field) -> bool:
    """Whether a field has no default."""
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def positive(value: int | float) -> str | None:
    return None if value > 0 else f"{value!r} must be greater than 0"


def at_least_zero(value: int | float) -> str | None:
    return None if value >= 0 else f"{value!r} must be 0 (off) or more"
