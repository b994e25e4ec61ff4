"""Typed task and group specs: one frozen dataclass per YAML mapping, the YAML key is the field name.

Each field is declared with `spec_field(doc, ...)`: the doc string is shown in "missing key" errors, and an optional
`check` returns what is wrong with a value (or None). `loader.py` turns YAML into these classes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal
from urllib.parse import urlparse

from flextape_bench.tasks.templating import template_problem

Check = Callable[[Any], "str | None"]
GenderOrder = Literal["female_first", "male_first", "target_new", "none"]


def spec_field(doc: str, *, default: Any = dataclasses.MISSING, check: Check | None = None,
               nonempty: bool = False, yaml: bool = True) -> Any:
    """A dataclass field carrying its documentation and validation rules (checks apply per item of a tuple)."""
    metadata = {"doc": doc, "check": check, "nonempty": nonempty, "yaml": yaml}
    return dataclasses.field(default=default, metadata=metadata)


def _name(value: str) -> str | None:
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


def _sha256(value: str) -> str | None:
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return None
    return f"{value!r} is not a sha256 (64 lowercase hex digits); copy it from `sha256sum FILE` or write null"


def _dotted_path(value: str) -> str | None:
    if value and all(value.split(".")):
        return None
    return f"{value!r} is not a dotted path like 'requested_rewrite.subject' (empty segment)"


def _metric(value: str) -> str | None:
    from flextape_bench.metrics import METRICS  # imported here: listing tasks must not pay for the metric stack

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

    file: str = spec_field("local file name looked up in the data folders, e.g. seesaw_cf_P19_P101.json",
                           check=_relative_file)
    url: str = spec_field("download URL, pinned to a commit", check=_url)
    sha256: str | None = spec_field("sha256 of the file, or null when unknown", default=None, check=_sha256)
    alternates: tuple[Alternate, ...] = spec_field("local stand-ins used only when `file` is absent", default=())


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
    generation_prompts: str | None = spec_field("path of the list of generation prompts, or null", default=None,
                                                check=_dotted_path)


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """The probe prompts of each record: parallel lists of prompts, entity ids and entity names."""

    prompts: str = spec_field("path of the list of probe prompts", check=_dotted_path)
    ids: str | None = spec_field("path of the parallel list of probe entity ids, or null", default=None,
                                 check=_dotted_path)
    names: str | None = spec_field("path of the parallel list of probe entity names, or null", default=None,
                                   check=_dotted_path)
    gender: GenderOrder = spec_field(
        "how probe genders are known: female_first / male_first (two blocks, boundary recovered from cases "
        "sharing target_new; needs `ids`), target_new (all probes have target_new's gender), none",
        default="none")

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

    prompt: str = spec_field("renders each prompt from the variable `prompt`", default="{{ prompt }}",
                             check=_prompt_template)
    target: str = spec_field("renders each target from the variable `target`", default="{{ target | trim }}",
                             check=_target_template)


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """One task: a dataset, how to read its records, and the metrics computed on it."""

    task: str = spec_field("task name, unique across all task folders", check=_name)
    description: str = spec_field("one line shown by `flextape-bench list`")
    dataset: DatasetSpec = spec_field("the data file (see DatasetSpec)")
    fields: FieldMap = spec_field("where each value sits in a record (see FieldMap)")
    probes: ProbeSpec | None = spec_field("probe prompts (see ProbeSpec), or null when the task has none")
    templates: Templates = spec_field("prompt and target templates (see Templates)", default=Templates())
    metrics: tuple[str, ...] = spec_field("names of registered metrics", check=_metric, nonempty=True)
    source: Path = spec_field("the YAML file the spec was loaded from", yaml=False)

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of every YAML field after include merging (cache keys use it)."""
        return canonical_hash(self)


@dataclass(frozen=True, kw_only=True)
class GroupSpec:
    """A named list of tasks and other groups."""

    group: str = spec_field("group name, unique across tasks and groups", check=_name)
    description: str = spec_field("one line shown by `flextape-bench list`")
    tasks: tuple[str, ...] = spec_field("member task or group names, in run order", check=_name, nonempty=True)
    source: Path = spec_field("the YAML file the group was loaded from", yaml=False)


def yaml_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a spec class that are read from YAML."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)]


def _yaml_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _yaml_value(getattr(value, f.name)) for f in yaml_fields(type(value))}
    if isinstance(value, tuple):
        return [_yaml_value(item) for item in value]
    return value


def canonical_hash(spec: TaskSpec | GroupSpec) -> str:
    """sha256 of the spec's YAML fields as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(_yaml_value(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
