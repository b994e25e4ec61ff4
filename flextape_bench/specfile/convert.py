"""Located YAML values -> typed values: scalars, Literals, NewTypes, lists, tuples, optionals and nested spec
dataclasses, each problem recorded with its file, line and dotted key (see `spec_field` for the field rules)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flextape_bench.errors import closest
from flextape_bench.specfile.fields import Check, required, typed_fields
from flextape_bench.specfile.located import Located, Problems, describe_value

INVALID: Any = object()  # result of converting a value that has problems


def suggest(word: str, known: Sequence[str]) -> str:
    """\"did you mean 'x'?\" for the closest of `known`, else the list of them."""
    close = closest(word, known)
    return f"did you mean {close!r}?" if close else f"known: {', '.join(known)}"


def _number_hint(value: Any) -> str:
    """Why a string that looks like a number was not read as one (YAML 1.1 reads 1e-3 as a string)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return "; drop the quotes, and write exponents with a decimal point (1.0e-3, not 1e-3)"


@dataclass
class Converter:
    """Converts Located values to the types of spec dataclass fields, recording what is wrong in `problems`.

    `require`: missing required keys are problems (False for include-only bases). `command_line`: the values were
    typed in a flag, so hints speak of the command line instead of YAML quoting. `floats`: a whole number given for a
    float becomes a float (specs hash 1 and 1.0 alike); False keeps it as written. `type_checks`: a further check per
    annotated type (e.g. a NewType), after its base type's.
    """

    problems: Problems
    require: bool = True
    command_line: bool = False
    floats: bool = True
    type_checks: Mapping[Any, Check] = field(default_factory=dict)

    def fail(self, node: Located, key: str, message: str) -> Any:
        self.problems.add(node, key, message)
        return INVALID

    def value(self, node: Located, tp: Any, key: str, spec: dataclasses.Field | None = None) -> Any:
        """`node` converted to type `tp` with the rules of field `spec`, or INVALID after recording why not."""
        origin = typing.get_origin(tp)
        if origin in (types.UnionType, typing.Union):
            if node.value is None:
                return None
            (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
            return self.value(node, inner, key, spec)
        if dataclasses.is_dataclass(tp):
            return self.spec_class(node, typing.cast(type, tp), key)
        if origin in (tuple, list):
            return self.sequence(node, tp, key, spec)
        return self.checked(node, self.typed(node, tp, key), key, spec)

    def checked(self, node: Located, value: Any, key: str, spec: dataclasses.Field | None) -> Any:
        """`value` (converted from `node`) after the `check` of field `spec`."""
        check = spec.metadata.get("check") if spec else None
        problem = check(value) if check and value is not INVALID and value is not None else None
        return self.fail(node, key, problem) if problem else value

    def typed(self, node: Located, tp: Any, key: str) -> Any:
        """A Literal, NewType or scalar value."""
        if typing.get_origin(tp) is typing.Literal:
            options = [str(option) for option in typing.get_args(tp)]
            if node.value in options:
                return node.value
            close = closest(str(node.value), options)
            hint = f"; did you mean {close!r}?" if close else ""
            return self.fail(node, key, f"{describe_value(node)} is not one of {', '.join(options)}{hint}")
        supertype = getattr(tp, "__supertype__", None)
        if supertype is not None:
            value = self.typed(node, supertype, key)
            check = self.type_checks.get(tp)
            problem = check(value) if check and value is not INVALID else None
            return self.fail(node, key, problem) if problem else value
        return self.scalar(node, tp, key)

    def scalar(self, node: Located, tp: type, key: str) -> Any:
        value = node.value
        yaml_hints = not self.command_line
        if tp is str:
            if not isinstance(value, str):
                hint = "; put it in quotes" if yaml_hints and isinstance(value, (int, float, bool)) else ""
                return self.fail(node, key, f"expected a string, got {describe_value(node)}{hint}")
        elif tp is bool:
            if not isinstance(value, bool):
                return self.fail(node, key, f"expected true or false, got {describe_value(node)}")
        elif tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                digits = isinstance(value, str) and value.strip().lstrip("+-").isdigit()
                hint = "; drop the quotes" if yaml_hints and digits else ""
                return self.fail(node, key, f"expected a whole number, got {describe_value(node)}{hint}")
        elif tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                hint = _number_hint(value) if yaml_hints else ""
                return self.fail(node, key, f"expected a number, got {describe_value(node)}{hint}")
            if not math.isfinite(value):
                return self.fail(node, key, f"expected a finite number, got {describe_value(node)}")
            value = float(value) if self.floats else value
        else:
            raise TypeError(f"spec field type {tp!r} is not supported")
        return value

    def sequence(self, node: Located, tp: Any, key: str, spec: dataclasses.Field | None) -> Any:
        """A list (annotated `list[X]`) or tuple (`tuple[X, ...]`); the field's check applies to each item."""
        if not isinstance(node.value, list):
            hint = "write e.g. [1, 2]" if self.command_line else "write `[a, b]` or one `- item` per line"
            return self.fail(node, key, f"expected a list, got {describe_value(node)}; {hint}")
        if spec and spec.metadata.get("nonempty") and not node.value:
            return self.fail(node, key, "the list is empty; name at least one")
        item_type = typing.get_args(tp)[0]
        items = [
            self.checked(item, self.value(item, item_type, f"{key}[{i}]"), f"{key}[{i}]", spec)
            for i, item in enumerate(node.value)
        ]
        if INVALID in items:
            return INVALID
        return items if typing.get_origin(tp) is list else tuple(items)

    def spec_class(self, node: Located, cls: type, key: str, extra: dict[str, Any] | None = None) -> Any:
        """An instance of the spec dataclass `cls` from a mapping (unknown and missing keys recorded), with `extra`
        keyword arguments for its non-YAML fields."""
        if not isinstance(node.value, dict):
            return self.fail(node, key, f"expected a mapping of keys (see {cls.__name__}), got {describe_value(node)}")
        fields = typed_fields(cls)
        kwargs: dict[str, Any] = {}
        for name, child in node.value.items():
            sub = f"{key}.{name}" if key else name
            if name in fields:
                spec, tp = fields[name]
                kwargs[name] = self.value(child, tp, sub, spec)
            else:
                self.fail(child, sub, f"unknown key; {suggest(name, list(fields))}")
        missing = [spec for spec, _ in fields.values() if spec.name not in kwargs and required(spec)]
        for spec in missing if self.require else []:
            sub = f"{key}.{spec.name}" if key else spec.name
            self.fail(node, sub, f"required key missing; add `{spec.name}:` ({spec.metadata['doc']})")
        if missing or INVALID in kwargs.values():
            return INVALID
        instance = cls(**kwargs, **(extra or {}))
        cross_check = getattr(instance, "cross_check", None)
        for name, message in cross_check() if cross_check else []:
            self.fail(node.value.get(name, node), f"{key}.{name}" if key else name, message)
        return instance
