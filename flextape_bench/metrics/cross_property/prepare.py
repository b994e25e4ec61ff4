"""The cross_property metric's preparation, from the task's `cross_property` section: the candidate answers, read
from a literal list or an upstream CSV table, and the edited subjects' true values, read from files that name
subjects (matched by name, since records carry only the subject's name) and mapped to candidates through the
candidates' QIDs."""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flextape_bench.cases import EditCase, distinct_prompts
from flextape_bench.errors import UserError
from flextape_bench.tasks.build import walk
from flextape_bench.tasks.data import data_notes, read_json, resolve_dataset
from flextape_bench.tasks.spec import Candidates, CrossProperty, FieldMap, TaskSpec, TruthSource
from flextape_bench.tasks.templating import compile_template, render

NAME = "cross_property"
logger = logging.getLogger(__name__)

# why a case has no known true value
NO_SUBJECT = "subject_not_found"  # the subject's name is in no true-value file
NO_VALUE = "no_value"  # found, but no value of the property
NOT_CANDIDATE = "value_not_a_candidate"  # values found, none of them among the candidates (by QID)
AMBIGUOUS = "ambiguous_name"  # the name belongs to more than one subject QID of a subject_info file


@dataclass(frozen=True)
class CrossQuery:
    """What the metric asks about the edited subject: each distinct generation prompt, scored with every candidate
    answer of the second property; `truth` holds the candidates that are the subject's true values (None when
    unknown); `ranking` picks the top-1 (sum_nll or mean_nll, the spec's cross_property.ranking)."""

    property: str
    prompts: tuple[str, ...]
    candidates: tuple[str, ...]
    truth: tuple[str, ...] | None = None
    ranking: str = "sum_nll"


def query_of(case: EditCase) -> CrossQuery | None:
    """The case's cross-property query, if its task has the metric."""
    return case.queries.get(NAME)


@dataclass(frozen=True)
class CandidateSet:
    """Distinct candidate strings in file order, and the QIDs that map to each (a string may have several)."""

    values: tuple[str, ...]
    by_id: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubjectValues:
    """True-value QIDs by subject name, merged over the true-value files; names that are ambiguous in a file."""

    values: dict[str, set[str]] = field(default_factory=dict)
    ambiguous: set[str] = field(default_factory=set)


def _where(spec: TaskSpec, key: str) -> str:
    return f"{spec.source}: cross_property.{key}"


def read_candidate_table(
    path: Path, candidates: Candidates, where: str = "cross_property.candidates"
) -> list[tuple[str, str | None]]:
    """(candidate string, QID or None) per data row of a CSV table; rows with an empty candidate cell are skipped.
    Raises UserError naming the file, line and column."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read candidate table {path} ({exc}); re-download it") from exc
    if candidates.columns is not None:
        header, body, start = list(candidates.columns), rows, 1
    elif rows:
        header, body, start = rows[0], rows[1:], 2
    else:
        raise UserError(f"candidate table {path} is empty; re-download it")
    names = [name.strip() for name in header]
    positions = {}
    for key in ("value_column", "id_column"):
        column = getattr(candidates, key)
        if column is None:
            continue
        if column not in names:
            raise UserError(
                f"{path}: no column {column!r} (columns: {', '.join(names) or 'none'}); fix "
                f"{where}.{key}, or name the columns of a file without a header row in {where}.columns"
            )
        positions[key] = names.index(column)
    out = []
    for line, row in enumerate(body, start=start):
        if not row:
            continue
        if len(row) != len(names):
            raise UserError(
                f"{path}:{line}: {len(row)} fields, but {len(names)} columns ({', '.join(names)}); fix "
                f"{where}.columns or the file"
            )
        value = row[positions["value_column"]].strip()
        if value:
            qid = row[positions["id_column"]].strip() if "id_column" in positions else None
            out.append((value, qid or None))
    if not out:
        raise UserError(f"{path}: no candidate in column {candidates.value_column!r}; fix {where}.value_column")
    return out


def candidate_set(pairs: Sequence[tuple[str, str | None]]) -> CandidateSet:
    """Distinct candidates in first-appearance order; every QID given for a string maps to it."""
    values = tuple(dict.fromkeys(value for value, _ in pairs))
    by_id: dict[str, str] = {}
    for value, qid in pairs:
        if qid is not None:
            by_id.setdefault(qid, value)
    return CandidateSet(values, by_id)


def load_candidates(spec: TaskSpec, data_dir: Path | None, cache_dir: Path, offline: bool = False) -> CandidateSet:
    """The task's candidates, each rendered through its target template (as the rewrite's targets are)."""
    cross = _section(spec)
    candidates = cross.candidates
    if candidates.values is not None:
        pairs = list(zip(candidates.values, candidates.ids or (None,) * len(candidates.values)))
    else:
        path = resolve_dataset(spec.task, candidates.dataset, data_dir, cache_dir, offline=offline)
        pairs = read_candidate_table(path, candidates)
    template = compile_template(spec.templates.target)
    rendered = []
    for value, qid in pairs:
        text = render(
            template,
            f"{spec.source}: templates.target: rendering failed for task {spec.task}, candidate {value!r}",
            target=value,
        )
        if not text.strip():
            raise UserError(f"{spec.source}: templates.target: renders candidate {value!r} empty; fix the template")
        rendered.append((text, qid))
    return candidate_set(rendered)


def _section(spec: TaskSpec) -> CrossProperty:
    if spec.cross_property is None:
        raise UserError(
            f"{spec.source}: task {spec.task} has no `cross_property:` section; add one (property, "
            f"candidates) or drop the cross_property metric"
        )
    return spec.cross_property


def subject_info_values(path: Path, prop: str, where: str = "cross_property.true_values") -> SubjectValues:
    """From a `*_subject_info.json` file ({QID: {name, properties: {Pxxx: [values]}}}): the values of `prop` by
    subject name. A name held by two QIDs is ambiguous (left out)."""
    data = read_json(path, where)
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: expected a JSON object of subject QID -> {{name, properties}}; is {where} "
            f"`format: subject_info` right?"
        )
    qids: dict[str, set[str]] = {}
    values: dict[str, set[str]] = {}
    for qid, entry in data.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(entry.get("properties", {}), dict)
        ):
            raise UserError(
                f"{path}: subject {qid!r} is not {{name: str, properties: {{...}}}}; is {where} "
                f"`format: subject_info` right?"
            )
        name = entry["name"]
        qids.setdefault(name, set()).add(qid)
        found = entry.get("properties", {}).get(prop, [])
        values.setdefault(name, set()).update(
            v for v in (found if isinstance(found, list) else [found]) if isinstance(v, str)
        )
    ambiguous = {name for name, held in qids.items() if len(held) > 1}
    return SubjectValues({n: v for n, v in values.items() if n not in ambiguous}, ambiguous)


def edit_values(path: Path, prop: str, fields: FieldMap, where: str = "cross_property.true_values") -> SubjectValues:
    """From a record file of edits (read through `fields`): for each edit of `prop`, its subject's true value
    (target_true_id). Records of other relations are skipped."""
    data = read_json(path, where)
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of records; is {where} `format: edits` right?")
    values: dict[str, set[str]] = {}
    for index, record in enumerate(data):
        got = {key: walk(record, getattr(fields, key))[0] for key in ("relation", "subject", "target_true_id")}
        missing = [
            f"fields.{key} ({getattr(fields, key)!r})" for key, value in got.items() if not isinstance(value, str)
        ]
        if missing:
            raise UserError(
                f"{path}: record {index} has no string at {', '.join(missing)}; is {where} `format: edits` right?"
            )
        if got["relation"] == prop:
            values.setdefault(got["subject"], set()).add(got["target_true_id"])
    return SubjectValues(values)


def load_subject_values(spec: TaskSpec, data_dir: Path | None, cache_dir: Path, offline: bool = False) -> SubjectValues:
    """True-value QIDs by subject name, merged over the section's `true_values` files."""
    cross = _section(spec)
    merged = SubjectValues()
    for i, source in enumerate(cross.true_values):
        where = f"cross_property.true_values[{i}] of {spec.source}"
        path = resolve_dataset(spec.task, source.dataset, data_dir, cache_dir, offline=offline)
        found = _source_values(source, path, cross.property, spec.fields, where)
        merged.ambiguous.update(found.ambiguous)
        for name, values in found.values.items():
            merged.values.setdefault(name, set()).update(values)
    return merged


def unverified_files(spec: TaskSpec) -> list[str]:
    """A note for each of the section's files (candidate table, true values) that no sha256 verifies, for the list of
    what a run will not verify."""
    cross = _section(spec)
    files = [cross.candidates.dataset] if cross.candidates.file is not None else []
    files += [source.dataset for source in cross.true_values]
    return [f"cross_property: {note}" for dataset in files for note in data_notes(dataset, Path(dataset.file))]


def _source_values(source: TruthSource, path: Path, prop: str, fields: FieldMap, where: str) -> SubjectValues:
    if source.format == "subject_info":
        return subject_info_values(path, prop, where)
    return edit_values(path, prop, fields, where)


def truth_of(subject: str, subjects: SubjectValues, candidates: CandidateSet) -> tuple[tuple[str, ...] | None, str]:
    """The candidates that are `subject`'s true values (in candidate order), or None with the reason."""
    if subject in subjects.values:
        values = subjects.values[subject]
        if not values:
            return None, NO_VALUE
        known = {candidates.by_id[v] for v in values if v in candidates.by_id}
        if not known:
            return None, NOT_CANDIDATE
        return tuple(c for c in candidates.values if c in known), "known"
    return None, AMBIGUOUS if subject in subjects.ambiguous else NO_SUBJECT


def attach_cross(
    spec: TaskSpec, cases: Sequence[EditCase], candidates: CandidateSet, subjects: SubjectValues
) -> tuple[list[EditCase], dict[str, Any]]:
    """Cases with their query (distinct generation prompts, candidates, true values), and the true-value
    coverage: {property, candidates, cases, known, why_unknown: {reason: count}}."""
    cross = _section(spec)
    out, reasons = [], Counter[str]()
    for case in cases:
        truth, reason = truth_of(case.rewrite.subject, subjects, candidates)
        reasons[reason] += 1
        query = CrossQuery(
            cross.property, distinct_prompts(case.generation_prompts), candidates.values, truth, cross.ranking
        )
        out.append(dataclasses.replace(case, queries={**case.queries, NAME: query}))
    known = reasons.pop("known", 0)
    return out, {
        "property": cross.property,
        "candidates": len(candidates.values),
        "cases": len(cases),
        "known": known,
        "why_unknown": dict(sorted(reasons.items())),
    }


def prepare_cross(
    spec: TaskSpec, cases: Sequence[EditCase], data_dir: Path | None, cache_dir: Path, offline: bool = False
) -> tuple[list[EditCase], dict[str, Any]]:
    """`attach_cross` with the task's candidates and true values resolved like its data file; prints the coverage."""
    candidates = load_candidates(spec, data_dir, cache_dir, offline)
    subjects = load_subject_values(spec, data_dir, cache_dir, offline)
    out, coverage = attach_cross(spec, cases, candidates, subjects)
    missing = [case.case_id for case in out if not case.queries[NAME].prompts]
    if missing:
        logger.info(
            f"note: task {spec.task}: {len(missing)} of {len(out)} cases have no generation prompt; "
            "cross_property has nothing to score for them"
        )
    why = ", ".join(f"{reason} {n}" for reason, n in coverage["why_unknown"].items())
    logger.info(
        f"{spec.task}: cross_property {coverage['property']}: {coverage['candidates']} candidates; true "
        f"value known for {coverage['known']} of {coverage['cases']} cases" + (f" (unknown: {why})" if why else "")
    )
    return out, coverage
