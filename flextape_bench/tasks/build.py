"""Turn a task's JSON records into EditCases: map fields, render templates, attach probes and their genders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flextape_bench.cases import EditCase, Probe, Rewrite
from flextape_bench.errors import UserError
from flextape_bench.tasks.data import read_json
from flextape_bench.tasks.gender import CaseProbes, probe_genders
from flextape_bench.tasks.spec import TaskSpec
from flextape_bench.tasks.templating import compile_template, render

logger = logging.getLogger(__name__)


def walk(record: Any, dotted: str) -> tuple[Any, str | None]:
    """The value at the dotted path ("a.b.0") in a JSON record, and None; or None and the first missing segment."""
    value = record
    for segment in dotted.split("."):
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None, segment
    return value, None


@dataclass
class _Record:
    """One JSON record and how to name it in errors."""

    path: Path
    index: int
    data: Any
    case_id: int | None = None

    def error(self, key: str, message: str) -> UserError:
        case = f"case_id {self.case_id}" if self.case_id is not None else f"record {self.index}"
        return UserError(f"{self.path}: {case}: {key}: {message}")

    def get(self, key: str, dotted: str) -> Any:
        """The value at `dotted` (field `key` of the spec), or UserError naming what is missing."""
        value, missing = walk(self.data, dotted)
        if missing is not None:
            raise self.error(
                key,
                f"the record has no {dotted!r} (no {missing!r}); fix the data file or the "
                f"path in the task spec's {key}",
            )
        return value

    def text(self, key: str, dotted: str) -> str:
        value = self.get(key, dotted)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"{dotted!r} must be a non-empty string, got {value!r}; fix the data file")
        return value

    def texts(self, key: str, dotted: str) -> list[str]:
        value = self.get(key, dotted)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(key, f"{dotted!r} must be a list of strings; fix the data file or the task spec")
        return value


@dataclass(frozen=True)
class _RawCase:
    """A record's values before rendering."""

    case_id: int
    rewrite: Rewrite
    prompts: tuple[str, ...]
    probe_ids: tuple[str, ...]
    probe_names: tuple[str, ...]
    generation_prompts: tuple[str, ...]


def _read_records(path: Path) -> list[Any]:
    """The records of a data file: a non-empty JSON list."""
    records = read_json(path, "dataset.file")
    if not isinstance(records, list):
        raise UserError(
            f"{path}: expected a JSON list of records, got {type(records).__name__}; wrong file? (dataset.file)"
        )
    if not records:
        raise UserError(f"{path}: the file has no records; re-download it (dataset.file)")
    return records


def _raw_case(spec: TaskSpec, record: _Record) -> _RawCase:
    """Read one record through the spec's field map (no rendering yet)."""
    fields = spec.fields
    case_id = record.get("fields.case_id", fields.case_id)
    if not isinstance(case_id, int) or isinstance(case_id, bool):
        raise record.error("fields.case_id", f"{fields.case_id!r} must be an integer, got {case_id!r}")
    record.case_id = case_id
    prompt = record.text("fields.prompt", fields.prompt)
    if "{}" not in prompt:
        raise record.error(
            "fields.prompt", f"the prompt {prompt!r} has no '{{}}' where the subject goes; fix the data file"
        )
    rewrite = Rewrite(
        prompt=prompt,
        subject=record.text("fields.subject", fields.subject),
        relation=record.text("fields.relation", fields.relation),
        target_true=record.text("fields.target_true", fields.target_true),
        target_new=record.text("fields.target_new", fields.target_new),
        target_true_id=record.text("fields.target_true_id", fields.target_true_id),
        target_new_id=record.text("fields.target_new_id", fields.target_new_id),
    )
    generation = fields.generation_prompts
    prompts, ids, names = _raw_probes(spec, record)
    return _RawCase(
        case_id,
        rewrite,
        prompts,
        ids,
        names,
        tuple(record.texts("fields.generation_prompts", generation)) if generation else (),
    )


def _raw_probes(spec: TaskSpec, record: _Record) -> tuple[tuple[str, ...], ...]:
    """Probe prompts, ids and names (ids and names "" where the spec has none), checked to be parallel."""
    if spec.probes is None:
        return (), (), ()
    probes = spec.probes
    prompts = record.texts("probes.prompts", probes.prompts)
    lists = {"probes.prompts": prompts}
    for key, dotted in (("probes.ids", probes.ids), ("probes.names", probes.names)):
        lists[key] = record.texts(key, dotted) if dotted else [""] * len(prompts)
    if len({len(values) for values in lists.values()}) > 1:
        lengths = ", ".join(f"{key} {len(values)}" for key, values in lists.items())
        raise record.error("probes", f"the probe lists are not parallel ({lengths}); fix the data file")
    return tuple(prompts), tuple(lists["probes.ids"]), tuple(lists["probes.names"])


class _Renderer:
    """The spec's templates, compiled once; render errors name the task file, template, task and case."""

    def __init__(self, spec: TaskSpec):
        self.source, self.task = spec.source, spec.task
        self.prompt = compile_template(spec.templates.prompt)
        self.target = compile_template(spec.templates.target)

    def _where(self, key: str, case_id: int) -> str:
        return f"{self.source}: {key}: rendering failed for task {self.task}, case_id {case_id}"

    def prompt_text(self, prompt: str, case_id: int) -> str:
        return render(self.prompt, self._where("templates.prompt", case_id), prompt=prompt)

    def target_text(self, target: str, case_id: int) -> str:
        text = render(self.target, self._where("templates.target", case_id), target=target)
        if not text.strip():
            raise UserError(
                f"{self.source}: templates.target: renders target {target!r} of case_id {case_id} "
                f"empty; fix the template"
            )
        return text


def _case(raw: _RawCase, genders: tuple[str, ...] | None, render: _Renderer) -> EditCase:
    """Render one raw case into an EditCase."""
    cid = raw.case_id
    prompt = render.prompt_text(raw.rewrite.prompt, cid)
    if "{}" not in prompt:
        raise UserError(
            f"{render.source}: templates.prompt: the rendered edit prompt {prompt!r} of case_id {cid} "
            f"lost the '{{}}' where the subject goes; keep {{{{ prompt }}}} whole in the template"
        )
    rewrite = Rewrite(
        prompt=prompt,
        subject=raw.rewrite.subject,
        relation=raw.rewrite.relation,
        target_true=render.target_text(raw.rewrite.target_true, cid),
        target_new=render.target_text(raw.rewrite.target_new, cid),
        target_true_id=raw.rewrite.target_true_id,
        target_new_id=raw.rewrite.target_new_id,
    )
    probes = tuple(
        Probe(
            prompt=render.prompt_text(text, cid),
            entity_id=entity_id,
            entity_name=name,
            groups={"gender": genders[i]} if genders else {},
        )
        for i, (text, entity_id, name) in enumerate(zip(raw.prompts, raw.probe_ids, raw.probe_names))
    )
    generation = tuple(render.prompt_text(text, cid) for text in raw.generation_prompts)
    return EditCase(case_id=cid, rewrite=rewrite, probes=probes, generation_prompts=generation)


def load_cases(spec: TaskSpec, path: Path, limit: int | None = None) -> list[EditCase]:
    """The edit cases of `path` read through `spec`, the first `limit` in file order (all when None).

    Every record is checked, and probe genders are recovered over the whole file (they depend on other cases);
    a note on stderr says how many cases have probes of unknown gender. Raises UserError naming file, case and field.
    """
    if limit is not None and limit < 0:
        raise UserError(f"the case limit must be 0 or more, got {limit}")
    raws: list[_RawCase] = []
    seen: set[int] = set()
    for index, data in enumerate(_read_records(path)):
        record = _Record(Path(path), index, data)
        if not isinstance(data, dict):
            raise record.error("record", f"expected a JSON object, got {type(data).__name__}; fix the data file")
        raw = _raw_case(spec, record)
        if raw.case_id in seen:
            raise record.error("fields.case_id", "the case id is used twice; case ids must be unique in a file")
        seen.add(raw.case_id)
        raws.append(raw)
    order = spec.probes.gender if spec.probes else "none"
    genders = probe_genders(order, [CaseProbes(raw.rewrite.target_new_id, raw.probe_ids) for raw in raws])
    _note_unknown_genders(spec, order, raws, genders)
    render = _Renderer(spec)
    chosen = raws if limit is None else raws[:limit]
    return [_case(raw, gender, render) for raw, gender in zip(chosen, genders)]


def _note_unknown_genders(
    spec: TaskSpec, order: str, raws: list[_RawCase], genders: list[tuple[str, ...] | None]
) -> None:
    unknown = sum(1 for raw, gender in zip(raws, genders) if gender is None and raw.prompts)
    if spec.probes is not None and order != "none" and unknown:  # order is "none" without probes
        rest = (
            "they take the Wikidata P21 gender where the demographics cache has one, else"
            if spec.probes.gender_wikidata != "off"
            else "group metrics report them as"
        )
        logger.info(
            f"note: task {spec.task}: construction order gives no probe gender for {unknown} of {len(raws)} "
            f"cases; {rest} gender 'unknown'"
        )
