"""Typed task and group specs: one frozen dataclass per YAML mapping, the YAML key is the field name.

Each field is declared with `spec_field(doc, ...)` (flextape_bench.specfile): the doc string is shown in "missing
key" errors, and an optional `check` returns what is wrong with a value (or None). `loader.py` turns YAML into these
classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

from flextape_bench.specfile import at_least_zero, positive, required, spec_field, typed_fields, yaml_fields
from flextape_bench.tasks.templating import template_problem

GenderOrder = Literal["female_first", "male_first", "target_new", "none"]
GenderWikidata = Literal["prefer", "fallback", "off"]
CrossRanking = Literal["sum_nll", "mean_nll"]


def name_problem(value: str) -> str | None:
    """What is wrong with a task or group name (None where it is valid): the pattern that keeps names usable as
    folder names."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", value):
        return None
    return f"{value!r} is not a valid name; use letters, digits, '_', '.' and '-' (no spaces)"


def _relative_file(value: str) -> str | None:
    path = PurePosixPath(value)
    if value and not path.is_absolute() and ".." not in path.parts:
        return None
    return f"{value!r} must be a relative file name inside the data folder (no leading '/', no '..')"


def _url(value: str) -> str | None:
    if urlparse(value).scheme in ("http", "https", "file"):
        return None
    return f"{value!r} is not an http(s):// or file:// URL; give the full download address"


def _pinned_if_local(url: str | None, sha256: str | None) -> list[tuple[str, str]]:
    """A file:// URL copies a local file into the cache, whence its content can reach the results: only a file the
    spec pins by sha256, so that a task file cannot make a run read an arbitrary local file (`cross_check`)."""
    if url is None or urlparse(url).scheme != "file" or sha256 is not None:
        return []
    return [
        (
            "sha256",
            "a file:// url is copied only with the file's sha256 (a task file may not read just any local file); "
            "add `sha256:` from `sha256sum FILE`, or give the file's http(s) download address",
        )
    ]


def _sha256(value: str) -> str | None:
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return None
    return f"{value!r} is not a sha256 (64 lowercase hex digits); copy it from `sha256sum FILE` or write null"


def _dotted_path(value: str) -> str | None:
    if value and all(value.split(".")):
        return None
    return f"{value!r} is not a dotted path like 'requested_rewrite.subject' (empty segment)"


def _qid(value: str) -> str | None:
    if re.fullmatch(r"Q[1-9][0-9]*", value):
        return None
    return f"{value!r} is not a Wikidata item id like Q6581097"


def _property_id(value: str) -> str | None:
    if re.fullmatch(r"P[1-9][0-9]*", value):
        return None
    return f"{value!r} is not a Wikidata property id like P101"


def _column(value: str) -> str | None:
    return None if value.strip() else "a column name cannot be empty"


def _probability(value: float) -> str | None:
    return None if 0.0 < value <= 1.0 else f"{value!r} must be in (0, 1]; 1.0 turns nucleus sampling off"


def _subject_template(value: str) -> str | None:
    if value.count("{}") == 1 and value.strip():
        return None
    return f"{value!r} needs exactly one '{{}}' where the subject goes, e.g. '{{}} is'"


def _lexicon_file(value: str) -> str | None:
    if value.strip() and PurePosixPath(value).suffix in (".yaml", ".yml"):
        return None
    return f"{value!r} is not a lexicon file; name a .yaml file (relative to the file that names it, or absolute)"


def _metric(value: str) -> str | None:
    from flextape_bench.registry import METRICS  # a core lookup: it imports the metric plugins on first use only

    if value in METRICS:
        return None
    return f"unknown metric {value!r}; known metrics: {', '.join(METRICS.names())}"


@dataclass(frozen=True, kw_only=True)
class Alternate:
    """A local stand-in for the dataset file, used only when the file itself is found nowhere locally."""

    file: str = spec_field("file name relative to the data folder, e.g. reconstructed/x.json", check=_relative_file)
    sha256: str | None = spec_field("sha256 of the stand-in file, or null when unknown", default=None, check=_sha256)
    note: str = spec_field("what the stand-in lacks, printed as a warning when it is used")


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """Where the task's JSON file comes from and how to recognise it."""

    file: str = spec_field(
        "local file name looked up in the data folders, e.g. seesaw_cf_P19_P101.json", check=_relative_file
    )
    url: str = spec_field("download URL, pinned to a commit", check=_url)
    sha256: str | None = spec_field(
        "sha256 of the file, or null when unknown (a file:// url needs it)", default=None, check=_sha256
    )
    alternates: tuple[Alternate, ...] = spec_field("local stand-ins used only when `file` is absent", default=())

    def cross_check(self) -> list[tuple[str, str]]:
        return _pinned_if_local(self.url, self.sha256)


@dataclass(frozen=True, kw_only=True)
class FieldMap:
    """Dotted paths into each JSON record (`a.b` reads record["a"]["b"]; a numeric segment indexes a list)."""

    case_id: str = spec_field("path of the integer case id", check=_dotted_path)
    prompt: str = spec_field("path of the edit prompt, with '{}' where the subject goes", check=_dotted_path)
    subject: str = spec_field("path of the edited subject", check=_dotted_path)
    relation: str = spec_field("path of the edited relation id (e.g. P19)", check=_dotted_path)
    target_true: str = spec_field("path of the true target string", check=_dotted_path)
    target_true_id: str = spec_field("path of the true target's id (Wikidata QID)", check=_dotted_path)
    target_new: str = spec_field("path of the new target string", check=_dotted_path)
    target_new_id: str = spec_field("path of the new target's id (Wikidata QID)", check=_dotted_path)
    generation_prompts: str | None = spec_field(
        "path of the list of generation prompts, or null", default=None, check=_dotted_path
    )


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """The probe prompts of each record: parallel lists of prompts, entity ids and entity names."""

    prompts: str = spec_field("path of the list of probe prompts", check=_dotted_path)
    ids: str | None = spec_field(
        "path of the parallel list of probe entity ids, or null", default=None, check=_dotted_path
    )
    names: str | None = spec_field(
        "path of the parallel list of probe entity names, or null", default=None, check=_dotted_path
    )
    gender: GenderOrder = spec_field(
        "how probe genders are known: female_first / male_first (two blocks, boundary recovered from cases "
        "sharing target_new; needs `ids`), target_new (all probes have target_new's gender), none",
        default="none",
    )
    gender_wikidata: GenderWikidata = spec_field(
        "Wikidata P21 genders from the demographics cache: fallback (only for probes `gender` leaves unknown), "
        "prefer (over `gender`, where the cache has one), off (`gender` alone)",
        default="fallback",
        option=True,
    )

    def cross_check(self) -> list[tuple[str, str]]:
        """(field, problem) pairs that involve more than one field."""
        if self.gender in ("female_first", "male_first") and self.ids is None:
            return [("gender", f"{self.gender!r} recovers the gender boundary from probe ids; set `ids` too")]
        return []


def _prompt_template(value: str) -> str | None:
    return template_problem(value, "prompt")


def _target_template(value: str) -> str | None:
    return template_problem(value, "target")


@dataclass(frozen=True, kw_only=True)
class Templates:
    """Jinja2 templates applied to every scored prompt and to every target string."""

    prompt: str = spec_field(
        "renders each prompt from the variable `prompt`", default="{{ prompt }}", check=_prompt_template
    )
    target: str = spec_field(
        "renders each target from the variable `target`", default="{{ target | trim }}", check=_target_template
    )


@dataclass(frozen=True, kw_only=True)
class Candidates:
    """The candidate answers of the second property: a literal list (`values`, optionally with their `ids`) or a
    CSV table in the data folders (`file`, `url`, `sha256`, `value_column`, `id_column`, `columns`)."""

    values: tuple[str, ...] | None = spec_field(
        "literal candidate strings, e.g. [male, female]; or null to read `file`", default=None, nonempty=True
    )
    ids: tuple[str, ...] | None = spec_field(
        "Wikidata QIDs parallel to `values` (they match the subject's true values), or null", default=None, check=_qid
    )
    file: str | None = spec_field(
        "CSV file of candidates, looked up like the dataset, e.g. fow.csv", default=None, check=_relative_file
    )
    url: str | None = spec_field("download URL of `file`, pinned to a commit", default=None, check=_url)
    sha256: str | None = spec_field(
        "sha256 of `file`, or null when unknown (a file:// url needs it)", default=None, check=_sha256
    )
    columns: tuple[str, ...] | None = spec_field(
        "column names of a CSV file without a header row; null: the first row is the header",
        default=None,
        check=_column,
        nonempty=True,
    )
    value_column: str | None = spec_field("column of `file` holding the candidate string", default=None, check=_column)
    id_column: str | None = spec_field(
        "column of `file` holding the candidate's Wikidata QID, or null", default=None, check=_column
    )

    def cross_check(self) -> list[tuple[str, str]]:
        table_keys = ("url", "sha256", "columns", "value_column", "id_column")
        if self.values is not None and self.file is not None:
            return [("file", "give either `values` (a literal list) or `file` (a CSV table), not both")]
        if self.values is None and self.file is None:
            return [
                ("values", "give the candidates: `values: [a, b]`, or a CSV `file:` with `url:` and `value_column:`")
            ]
        if self.values is not None:
            problems = [
                (key, f"`{key}` belongs to a CSV `file`; remove it or replace `values` by `file`")
                for key in table_keys
                if getattr(self, key) is not None
            ]
            if self.ids is not None and len(self.ids) != len(self.values):
                problems.append(
                    (
                        "ids",
                        f"{len(self.ids)} ids for {len(self.values)} values; give one QID per value, in the same order",
                    )
                )
            return problems
        problems = (
            [] if self.ids is None else [("ids", "`ids` belongs to literal `values`; use `id_column` for a CSV file")]
        )
        for key, doc in (
            ("url", "the download URL of `file`, pinned to a commit"),
            ("value_column", "the column holding the candidate string"),
        ):
            if getattr(self, key) is None:
                problems.append((key, f"required key missing; add `{key}:` ({doc})"))
        for key in ("value_column", "id_column"):
            column = getattr(self, key)
            if self.columns is not None and column is not None and column not in self.columns:
                problems.append((key, f"{column!r} is not one of `columns` ({', '.join(self.columns)})"))
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            problems.append(("columns", "a column name is given twice; name each column once"))
        return problems + _pinned_if_local(self.url, self.sha256)

    @property
    def dataset(self) -> DatasetSpec:
        """`file` as a data file to resolve (only for a CSV table, whose `url` `cross_check` requires)."""
        if self.file is None or self.url is None:
            raise ValueError("candidates given as literal `values` have no data file")
        return DatasetSpec(file=self.file, url=self.url, sha256=self.sha256)


@dataclass(frozen=True, kw_only=True)
class TruthSource:
    """A file telling the edited subjects' true values of the second property, matched by the subject's name."""

    file: str = spec_field("file name looked up like the dataset, e.g. P101_subject_info.json", check=_relative_file)
    url: str = spec_field("download URL, pinned to a commit", check=_url)
    sha256: str | None = spec_field(
        "sha256 of the file, or null when unknown (a file:// url needs it)", default=None, check=_sha256
    )
    format: Literal["subject_info", "edits"] = spec_field(
        "subject_info: JSON {QID: {name, properties: {Pxxx: [QIDs]}}}; edits: a record file read through this "
        "task's `fields`, where an edit of the property gives its subject's true value (target_true_id)"
    )

    def cross_check(self) -> list[tuple[str, str]]:
        return _pinned_if_local(self.url, self.sha256)

    @property
    def dataset(self) -> DatasetSpec:
        return DatasetSpec(file=self.file, url=self.url, sha256=self.sha256)


@dataclass(frozen=True, kw_only=True)
class CrossProperty:
    """The second property asked about the edited subject by the generation prompts (metric cross_property)."""

    property: str = spec_field("Wikidata id of the property the generation prompts ask, e.g. P101", check=_property_id)
    candidates: Candidates = spec_field("its candidate answers (see Candidates)")
    true_values: tuple[TruthSource, ...] = spec_field(
        "files giving the edited subject's true values, merged (see TruthSource); [] when none", default=()
    )
    ranking: CrossRanking = spec_field(
        "how the top-1 candidate is chosen: sum_nll (highest summed log-probability of its tokens, as the "
        "upstream code) or mean_nll (highest geometric-mean token probability)",
        default="sum_nll",
        option=True,
    )


@dataclass(frozen=True, kw_only=True)
class LongForm:
    """Long-form generation about the edited subject, before and after the edit (metric long_form): seeded
    sampling, n-gram diversity, whether the edit shows, and keyword flags of the paper's flaw categories."""

    prompts: Literal["generation_prompts", "templates"] = spec_field(
        "generation_prompts: each distinct generation prompt of the record; templates: the `templates` below",
        default="generation_prompts",
    )
    templates: tuple[str, ...] | None = spec_field(
        "subject templates with '{}' for the subject, e.g. ['{} is'] (only with prompts: templates), or null",
        default=None,
        check=_subject_template,
        nonempty=True,
    )
    samples: int = spec_field("texts sampled per prompt, before and after the edit", default=1, check=positive)
    max_new_tokens: int = spec_field(
        "at most this many generated tokens per text (EOS stops earlier)", default=100, check=positive
    )
    do_sample: bool = spec_field("true: sample (seeded); false: greedy decoding", default=True)
    temperature: float = spec_field("softmax temperature when sampling", default=1.0, check=positive)
    top_k: int = spec_field("sample among the k most likely tokens; 0 turns it off", default=50, check=at_least_zero)
    top_p: float = spec_field(
        "nucleus sampling: the smallest set of tokens with this much probability; 1.0 is off",
        default=1.0,
        check=_probability,
    )
    lexicon: tuple[str, ...] = spec_field(
        "flaw lexicon YAML files applied over the packaged flaw_lexicon.yaml, in order (relative to the file that "
        "names them); [] for the packaged lexicon alone",
        default=(),
        check=_lexicon_file,
        hashed=False,
    )

    def cross_check(self) -> list[tuple[str, str]]:
        problems = []
        if self.prompts == "templates" and self.templates is None:
            problems.append(("templates", "`prompts: templates` needs the templates, e.g. `templates: ['{} is']`"))
        if self.prompts == "generation_prompts" and self.templates is not None:
            problems.append(
                (
                    "templates",
                    "`templates` is used only with `prompts: templates`; remove it or set `prompts: templates`",
                )
            )
        if not self.do_sample and self.samples > 1:
            problems.append(
                (
                    "samples",
                    "greedy decoding (do_sample: false) gives the same text every time; set "
                    "samples: 1 or do_sample: true",
                )
            )
        return problems


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """One task: a dataset, how to read its records, and the metrics computed on it."""

    task: str = spec_field("task name, unique across all task folders", check=name_problem)
    description: str = spec_field("one line shown by `flextape-bench list`")
    dataset: DatasetSpec = spec_field("the data file (see DatasetSpec)")
    fields: FieldMap = spec_field("where each value sits in a record (see FieldMap)")
    probes: ProbeSpec | None = spec_field("probe prompts (see ProbeSpec), or null when the task has none")
    templates: Templates = spec_field("prompt and target templates (see Templates)", default=Templates())
    metrics: tuple[str, ...] = spec_field("names of registered metrics", check=_metric, nonempty=True)
    cross_property: CrossProperty | None = spec_field(
        "the second property of the generation prompts and its candidates (see CrossProperty), or null",
        default=None,
        hash_none=False,
    )
    long_form: LongForm | None = spec_field(
        "long-form generation settings of the long_form metric (see LongForm), or null", default=None, hash_none=False
    )
    source: Path = spec_field("the YAML file the spec was loaded from", yaml=False)
    include_path: tuple[Path, ...] = spec_field(
        "the --include-path folders it was loaded with (its includes may name files there)", default=(), yaml=False
    )

    def cross_check(self) -> list[tuple[str, str]]:
        problems = []
        if "cross_property" in self.metrics and self.cross_property is None:
            problems.append(
                (
                    "metrics",
                    "the cross_property metric needs a `cross_property:` section (property, "
                    "candidates); add one or drop the metric",
                )
            )
        elif self.cross_property is not None and self.fields.generation_prompts is None:
            problems.append(
                (
                    "cross_property",
                    "asks the generation prompts, but fields.generation_prompts is null; set it or remove the section",
                )
            )
        if "long_form" in self.metrics and self.long_form is None:
            problems.append(
                (
                    "metrics",
                    "the long_form metric needs a `long_form:` section (`long_form: {}` takes "
                    "the defaults); add one or drop the metric",
                )
            )
        elif (
            self.long_form is not None
            and self.long_form.prompts == "generation_prompts"
            and self.fields.generation_prompts is None
        ):
            problems.append(
                (
                    "long_form",
                    "generates from the generation prompts, but fields.generation_prompts is "
                    "null; set it, or use `prompts: templates`",
                )
            )
        return problems

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of every YAML field after include merging (cache keys use it)."""
        return canonical_hash(self)


@dataclass(frozen=True, kw_only=True)
class GroupSpec:
    """A named list of tasks and other groups."""

    group: str = spec_field("group name, unique across tasks and groups", check=name_problem)
    description: str = spec_field("one line shown by `flextape-bench list`")
    tasks: tuple[str, ...] = spec_field("member task or group names, in run order", check=name_problem, nonempty=True)
    source: Path = spec_field("the YAML file the group was loaded from", yaml=False)
    include_path: tuple[Path, ...] = spec_field("the --include-path folders it was loaded with", default=(), yaml=False)


def _yaml_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {
            f.name: _yaml_value(getattr(value, f.name))
            for f in yaml_fields(type(value))
            if f.metadata.get("hashed", True)
            and (f.metadata.get("hash_none", True) or getattr(value, f.name) is not None)
        }
    if isinstance(value, tuple):
        return [_yaml_value(item) for item in value]
    return value


def metric_options(value: Any, prefix: str = "") -> dict[str, Any]:
    """The metric options (`spec_field(option=True)`) of a spec, by dotted key, e.g. {"cross_property.ranking":
    "sum_nll"}; sections that are None have none."""
    if not dataclasses.is_dataclass(value):
        return {}
    out: dict[str, Any] = {}
    for f in yaml_fields(type(value)):
        item = getattr(value, f.name)
        if f.metadata.get("option"):
            out[prefix + f.name] = item
        else:
            out.update(metric_options(item, f"{prefix}{f.name}."))
    return out


def canonical_hash(spec: TaskSpec | GroupSpec) -> str:
    """sha256 of the spec's YAML fields as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(_yaml_value(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _unwrapped(tp: Any) -> tuple[Any, bool]:
    """`tp` without `| None` and `tuple[X, ...]`, and whether it is a list."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        (tp,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if typing.get_origin(tp) is tuple:
        return typing.get_args(tp)[0], True
    return tp, False


def _type_name(tp: Any) -> str:
    """How a field's type reads in the field reference, e.g. "list of str", "female_first / male_first"."""
    inner, many = _unwrapped(tp)
    if typing.get_origin(inner) is typing.Literal:
        name = " / ".join(map(str, typing.get_args(inner)))
    else:
        name = "mapping" if dataclasses.is_dataclass(inner) else inner.__name__
    name = f"list of {name}" if many else name
    return f"{name} or null" if type(None) in typing.get_args(tp) else name


def _default_text(field: dataclasses.Field) -> str:
    """A field's default as the field reference shows it: "required", "its defaults" (a section) or `value`."""
    if required(field):
        return "required"
    if dataclasses.is_dataclass(field.default):
        return "its defaults"
    value = json.dumps(_yaml_value(field.default), ensure_ascii=False)
    return f"`{value[1:-1] if isinstance(field.default, str) else value}`"


def field_rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, doc) of every YAML field of spec class `cls`, each section's fields after its
    key (`key[].field` for a list of sections)."""
    rows = []
    for name, (field, tp) in typed_fields(cls).items():
        rows.append((prefix + name, _type_name(tp), _default_text(field), field.metadata["doc"]))
        inner, many = _unwrapped(tp)
        if dataclasses.is_dataclass(inner):
            rows += field_rows(typing.cast(type, inner), f"{prefix}{name}{'[]' if many else ''}.")
    return rows


def field_reference() -> str:
    """The keys of task and group files as Markdown tables, from their `spec_field` declarations (docs/tasks.md)."""
    lines = []
    for cls in (TaskSpec, GroupSpec):
        lines += [f"{cls.__name__}:", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for key, type_name, default, doc in field_rows(cls):
            cells = [f"`{key}`", type_name, default, doc]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines[:-1])
