"""The case record a run writes for each case (`<run>/<task>/case_<id>.json`), declared once.

The TypedDicts below are the record's schema, keys in the order the runner writes them; `case_record` builds a record
in that order, `SCHEMA` is the schema as a `Shape` tree (what `problems` checks a record against and what the Hub
export turns into dataset features). Two parts are open: `metrics` holds each metric's own values, and a probe's
`groups` maps label names (gender, race, ...) to labels; `Open` and `MapOf` mark them, and a reader of many records
takes their keys (and, for `Open`, their types) from the records themselves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, TypedDict, Union, cast

from flextape_bench.cases import CaseScores, EditCase


class RewriteRecord(TypedDict):
    """`cases.Rewrite` as `dataclasses.asdict` writes it."""

    prompt: str
    subject: str
    relation: str
    target_true: str
    target_new: str
    target_true_id: str
    target_new_id: str


class ProbeRecord(TypedDict):
    """`cases.Probe` as `dataclasses.asdict` writes it."""

    prompt: str
    entity_id: str
    entity_name: str
    groups: dict[str, str]


class PairScoreRecord(TypedDict):
    """`cases.PairScore.to_json`: p = exp(-mean token NLL), summed NLL and token count of each target."""

    p_new: float
    p_true: float
    nll_new: float
    nll_true: float
    n_new: int
    n_true: int


class CandidateScoresRecord(TypedDict):
    """The scores of one of a metric's own score requests: per target, its token count and summed NLL."""

    n_tokens: list[int]
    sum_nll: list[float]


class _ScoresRequired(TypedDict):
    edit: PairScoreRecord
    probes: list[PairScoreRecord]


class ScoresRecord(_ScoresRequired, total=False):
    """`cases.CaseScores.to_json`, pre- or post-edit; `generation` and `texts` only where metrics asked for them."""

    generation: list[CandidateScoresRecord]
    texts: list[list[str]]  # per prompt, one text per sample


class CrossRecord(TypedDict):
    """What the cross_property metric scored (its `record`): each prompt with every candidate."""

    property: str
    prompts: list[str]
    candidates: list[str]
    truth: list[str] | None
    ranking: str


class LongFormRecord(TypedDict):
    """What the long_form metric generated (its `record`): `samples` texts after each prompt."""

    prompts: list[str]
    samples: int


class _CaseRequired(TypedDict):
    case_id: int
    chunk: int  # the chunk of edits the case was edited in
    rewrite: RewriteRecord
    probes: list[ProbeRecord]
    metrics: dict[str, Any]  # metric name -> its values for the case (open: each metric's own)
    pre: ScoresRecord
    post: ScoresRecord


class CaseRecord(_CaseRequired, total=False):
    """One case of a run: written as case_id, chunk, rewrite, probes, the metrics' sections (cross, long_form),
    metrics, pre, post."""

    cross: CrossRecord
    long_form: LongFormRecord


def case_record(
    case: EditCase, chunk: int, sections: Mapping[str, Any], metrics: dict[str, Any], pre: CaseScores, post: CaseScores
) -> CaseRecord:
    """The record of `case`, keys in the order the runner has always written them; `sections`: what the metrics'
    `record` methods contributed, in metric order."""
    record = {
        "case_id": case.case_id,
        "chunk": chunk,
        "rewrite": dataclasses.asdict(case.rewrite),
        "probes": [dataclasses.asdict(p) for p in case.probes],
        **sections,
        "metrics": metrics,
        "pre": pre.to_json(),
        "post": post.to_json(),
    }
    return cast(CaseRecord, record)  # the parts' to_json and asdict give dicts; tests check them against SCHEMA


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar: `kind` is bool, int, float (an int is a float too) or str."""

    kind: str
    nullable: bool = False


@dataclass(frozen=True)
class ListOf:
    item: Shape
    nullable: bool = False


@dataclass(frozen=True)
class Struct:
    """An object with these keys; `optional` ones may be missing."""

    fields: dict[str, Shape]
    optional: frozenset[str] = frozenset()
    nullable: bool = False


@dataclass(frozen=True)
class MapOf:
    """An object whose keys the data names, each value of shape `value`."""

    value: Shape
    nullable: bool = False


@dataclass(frozen=True)
class Open:
    """Any JSON value: its shape is the data's."""


Shape: TypeAlias = Scalar | ListOf | Struct | MapOf | Open
SCALARS = {bool: "bool", int: "int", float: "float", str: "str"}


def shape_of(tp: Any, nullable: bool = False) -> Shape:
    """The shape of a type annotation of the schema: a TypedDict, list[X], dict[str, X], X | None, a scalar, Any."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, Union):
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return shape_of(inner, nullable=True)
    if tp is Any:
        return Open()
    if origin is list:
        return ListOf(shape_of(typing.get_args(tp)[0]), nullable)
    if origin is dict:
        return MapOf(shape_of(typing.get_args(tp)[1]), nullable)
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        return Struct({key: shape_of(hint) for key, hint in hints.items()}, frozenset(tp.__optional_keys__), nullable)
    return Scalar(SCALARS[tp], nullable)


SCHEMA: Struct = cast(Struct, shape_of(CaseRecord))


def _scalar_fits(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "bool"
    if isinstance(value, int):
        return kind in ("int", "float")
    return isinstance(value, {"float": float, "str": str}.get(kind, type(None)))


def problems(value: Any, shape: Shape = SCHEMA, where: str = "record") -> list[str]:
    """Where `value` (a parsed JSON value) departs from `shape`, each as `path: problem`; empty when it conforms."""
    if isinstance(shape, Open):
        return []
    if value is None:
        return [] if shape.nullable else [f"{where}: null where a value is required"]
    if isinstance(shape, Scalar):
        return [] if _scalar_fits(value, shape.kind) else [f"{where}: {type(value).__name__}, not {shape.kind}"]
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [p for i, item in enumerate(value) for p in problems(item, shape.item, f"{where}[{i}]")]
    if not isinstance(value, dict):
        return [f"{where}: {type(value).__name__}, not an object"]
    if isinstance(shape, MapOf):
        return [p for key, item in value.items() for p in problems(item, shape.value, f"{where}.{key}")]
    found = [f"{where}: undeclared key {key!r}" for key in value if key not in shape.fields]
    found += [f"{where}: no {key!r}" for key in shape.fields if key not in value and key not in shape.optional]
    return found + [
        p for key, sub in shape.fields.items() if key in value for p in problems(value[key], sub, f"{where}.{key}")
    ]
