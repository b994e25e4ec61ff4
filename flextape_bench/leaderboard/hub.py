"""Publish chosen tasks of finished runs as a Hugging Face dataset, built into a folder that is then pushed as it
is: `data/<task>/<model>/<editor>/<run>.jsonl` (one line per case), `data/summary.jsonl` (one line per run and task)
and `README.md`, the dataset card with one config per task and a `summary` config. A run's task without cases has no
case file, and a task without cases in any run no config (the card names it).

A task's config has the columns of the declared case record (`flextape_bench.records`) plus the run's identity, the
summary's the declared `SummaryLine`; only the schema's open parts (the metrics' values, probe group labels, a run's
results and config) take their keys and types from the data. Within a config every line has the same keys at every
depth (missing ones null), and the card declares each config's features, so `datasets` (and the Hub's viewer) read
every file with one schema even where a field is null throughout one file. Strings are redacted of the values of
environment variables named like tokens, keys, secrets or passwords; non-finite floats become null (strict JSON)."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import yaml
from datasets import DatasetInfo, Features, Value
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import HFValidationError, validate_repo_id

from flextape_bench.checksums import read_json, write_atomic
from flextape_bench.errors import UserError
from flextape_bench.records import CaseRecord, ListOf, MapOf, Open, Scalar, Shape, problems, shape_of
from flextape_bench.results import CONFIG, SUMMARY, RunDir, check_names, slug
from flextape_bench.tables import markdown_table

CARD = "README.md"
SUMMARY_CONFIG = "summary"
SUMMARY_FILE = "data/summary.jsonl"
SPLIT = "train"
REDACTED = "<redacted>"
SECRET_NAME = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|KEY)(_|$)", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter values (flags like HF_HUB_DISABLE_IMPLICIT_TOKEN=1) are not secrets
TAGS = ["flextape-bench", "seesaw-cf", "knowledge-editing", "model-editing", "bias", "evaluation"]
# The HTTP library's base error (httpx or httpx2, by huggingface_hub version): also raised for connection failures.
HTTP_ERROR: type[Exception] = HfHubHTTPError.__bases__[0]
CITATION = """\
@inproceedings{halevy-etal-2024-flex,
    title = "{``}Flex Tape Can{'}t Fix That{''}: Bias and Misinformation in Edited Language Models",
    author = "Halevy, Karina H and Sotnikova, Anna and AlKhamissi, Badr and Montariol, Syrielle and Bosselut, Antoine",
    booktitle = "Proceedings of the 2024 Conference on Empirical Methods in Natural Language Processing",
    year = "2024",
    address = "Miami, Florida, USA",
    publisher = "Association for Computational Linguistics",
    pages = "8690--8707",
    doi = "10.18653/v1/2024.emnlp-main.494",
}"""


class CaseLine(CaseRecord):
    """A line of a task's config: a case record with its run's identity and task."""

    model: str
    editor: str
    run: str
    task: str


class SummaryLine(TypedDict):
    """A line of the summary config: one run's task."""

    model: str
    editor: str
    run: str
    task: str
    n_cases: int | None
    seconds: float | None
    results: Any  # the task's aggregate values: each metric's own
    config: Any  # the run's config.json


CASE_LINE, SUMMARY_LINE = shape_of(CaseLine), shape_of(SummaryLine)


@dataclass(frozen=True)
class Run:
    """One finished run directory with its config.json, summary.json and timing (`RunDir.timing`; all redacted) and
    the tasks of it to publish, sorted."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    timing: dict[str, Any]
    tasks: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        """Model, editor and run name, as summary.json gives them."""
        return self.summary["model"], self.summary["editor"], self.summary["run"]

    @property
    def stem(self) -> str:
        """Where this run's file goes in each task's directory: `<model>/<editor>/<run>`, sanitised."""
        return "/".join(slug(part) for part in self.key)

    def data_file(self, task: str) -> str:
        """This run's case file of `task`, relative to the folder."""
        return f"data/{slug(task)}/{self.stem}.jsonl"

    def case_records(self, task: str) -> Iterator[dict[str, Any]]:
        """The case records of `task`, in case id order; a record that is not of the declared schema is an error."""
        for path in sorted((self.path / task).glob("case_*.json"), key=lambda p: int(p.stem.split("_")[1])):
            record = read_json(path)
            found = problems(record)
            if found:
                more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
                raise UserError(f"{path}: not a case record of this flextape-bench version: {found[0]}{more}")
            yield record


def check_repo_id(repo_id: str) -> None:
    """Raise UserError unless `repo_id` is a valid Hub repository id of the form ORG/NAME."""
    try:
        validate_repo_id(repo_id)
        valid = repo_id.count("/") == 1
    except HFValidationError:
        valid = False
    if not valid:
        raise UserError(
            f"--push-to-hub {repo_id!r}: give a Hugging Face repository id ORG/NAME, e.g. my-org/flextape-runs"
        )


def _secrets() -> list[str]:
    """Values of environment variables named like tokens, keys, secrets or passwords, longest first."""
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=lambda v: (-len(v), v))


def _clean(value: Any, secrets: Sequence[str]) -> Any:
    """`value` with `secrets` redacted from every string and non-finite floats as None."""
    if isinstance(value, dict):
        return {k: _clean(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _load_run(path: Path, tasks: Sequence[str], secrets: Sequence[str]) -> Run:
    for name in (CONFIG, SUMMARY):
        if not (path / name).is_file():
            raise UserError(f"{path}: no {name}; only finished runs (config.json and summary.json) can be published")
    run = Run(
        path,
        _clean(read_json(path / CONFIG), secrets),
        _clean(read_json(path / SUMMARY), secrets),
        _clean(RunDir(path).timing, secrets),
        tuple(sorted(set(tasks))),
    )
    check_names(path / SUMMARY, run.summary)  # its names become the file names of the dataset
    missing = [task for task in run.tasks if task not in run.summary["tasks"]]
    if missing:
        raise UserError(f"{path}: task {missing[0]!r} is not in its {SUMMARY}; only finished tasks can be published")
    return run


def _load_runs(selection: Mapping[Path, Sequence[str]], secrets: Sequence[str]) -> list[Run]:
    """The runs selecting at least one task, sorted by model, editor and run; two runs that would share file names
    are an error."""
    runs = sorted(
        (_load_run(Path(p), tasks, secrets) for p, tasks in selection.items() if tasks),
        key=lambda r: (r.key, str(r.path)),
    )
    if not runs:
        raise UserError("no finished runs to publish")
    seen: dict[str, Run] = {}
    for run in runs:
        other = seen.setdefault(run.stem, run)
        if other is not run:
            raise UserError(
                f"{other.path} and {run.path} would be published under the same name "
                f"({' / '.join(run.key)}); publish one of them"
            )
    return runs


def _merge_shape(shape: Any, value: Any) -> Any:
    """`shape` widened by `value`. A shape is a dict of shapes, a one-element list holding the elements' shape, a
    frozenset of the scalar type names seen, or None where only nulls were seen."""
    if value is None:
        return shape
    if isinstance(value, dict):
        shape = {} if shape is None else shape
        for key, item in value.items():
            shape[key] = _merge_shape(shape.get(key), item)
        return shape
    if isinstance(value, list):
        shape = [None] if shape is None else shape
        for item in value:
            shape[0] = _merge_shape(shape[0], item)
        return shape
    return (shape or frozenset()) | {type(value).__name__}


def _shape_of(lines: Iterable[dict[str, Any]], declared: Shape) -> Any:
    """The shape of all `lines` together: the `declared` one, with its open parts as the lines have them."""
    shape = None
    for line in lines:
        shape = _merge_shape(shape, line)
    return None if shape is None else _resolved(declared, shape)


def _resolved(declared: Shape, seen: Any) -> Any:
    """The shape `declared` gives, where it is open (`Open`, the keys of a `MapOf`) the shape `seen` in the data."""
    if isinstance(declared, Open):
        return seen
    if isinstance(declared, Scalar):
        return frozenset({declared.kind})
    if isinstance(declared, ListOf):
        return [_resolved(declared.item, seen[0] if isinstance(seen, list) else None)]
    seen = seen if isinstance(seen, dict) else {}
    if isinstance(declared, MapOf):
        return {key: _resolved(declared.value, sub) for key, sub in seen.items()}
    return {key: _resolved(sub, seen.get(key)) for key, sub in declared.fields.items()}


def _dtype(types: frozenset[str] | None) -> str:
    """The Arrow type that holds every scalar type seen (numbers widen to float64, mixtures to string)."""
    if not types:
        return "null"
    for allowed, dtype in (({"bool"}, "bool"), ({"int"}, "int64"), ({"int", "float"}, "float64")):
        if types <= allowed:
            return dtype
    return "string"


def _feature(shape: Any) -> Any:
    """The `datasets` feature of a shape; a dict that never has a key is null (Arrow has no empty struct)."""
    if isinstance(shape, dict):
        return {key: _feature(shape[key]) for key in sorted(shape)} if shape else Value("null")
    if isinstance(shape, list):
        return [_feature(shape[0])]
    return Value(_dtype(shape))


def _conform(value: Any, shape: Any) -> Any:
    """`value` with every dict holding every key of its shape (None where missing); dicts of a keyless shape as
    None, matching `_feature`."""
    if isinstance(value, dict):
        return {key: _conform(value.get(key), sub) for key, sub in shape.items()} if shape else None
    if isinstance(value, list):
        return [_conform(item, shape[0]) for item in value]
    return value


def _jsonl(lines: Iterable[dict[str, Any]], shape: Any) -> str:
    return "".join(
        json.dumps(_conform(line, shape), sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        + "\n"
        for line in lines
    )


def _case_lines(run: Run, task: str, secrets: Sequence[str]) -> Iterator[dict[str, Any]]:
    for record in run.case_records(task):
        yield {**dict(zip(("model", "editor", "run"), run.key)), "task": task, **_clean(record, secrets)}


def _summary_lines(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One line per run and published task: identity, case count, wall time, the task's aggregate values, the run's
    config."""
    lines = []
    for run in runs:
        for task in run.tasks:
            values = run.summary["tasks"][task]
            lines.append(
                {
                    **dict(zip(("model", "editor", "run"), run.key)),
                    "task": task,
                    "n_cases": values.get("n_cases"),
                    "seconds": run.timing["seconds"],
                    "results": values,
                    "config": run.config,
                }
            )
    return lines


def _write_task(folder: Path, runs: Sequence[Run], task: str, secrets: Sequence[str]) -> tuple[Any, list[int]]:
    """Write the case file of `task` of each run that has cases of it, all in one shape; returns the shape (None
    when no run has a case) and each run's case count. Case files are read twice (shape, then lines), so only one
    run's records of the task are in memory at a time."""
    shape = _shape_of((line for run in runs for line in _case_lines(run, task, secrets)), CASE_LINE)
    counts = []
    for run in runs:
        lines = list(_case_lines(run, task, secrets))
        if lines:
            write_atomic(folder / run.data_file(task), _jsonl(lines, shape))
        counts.append(len(lines))
    return shape, counts


def _card_metadata(files: dict[str, list[str]], features: dict[str, Features], repo_id: str) -> dict[str, Any]:
    """The card's YAML: license, language, pretty name, tags, one config per task plus `summary` (the default),
    and each config's features."""
    configs = [
        {
            "config_name": name,
            "data_files": [{"split": SPLIT, "path": paths}],
            **({"default": True} if name == SUMMARY_CONFIG else {}),
        }
        for name, paths in files.items()
    ]
    card_data = DatasetCardData()
    DatasetInfosDict({name: DatasetInfo(features=f) for name, f in features.items()}).to_dataset_card_data(card_data)
    return {
        "license": "mit",
        "language": ["en"],
        "pretty_name": f"flextape-bench results: {repo_id.split('/')[1]}",
        "tags": TAGS,
        "configs": configs,
        "dataset_info": card_data.to_dict()["dataset_info"],
    }


def _command(timing: dict[str, Any]) -> str:
    """The run's command line from its argv, the program by its file name only."""
    argv = timing["argv"] or ["?"]
    return shlex.join([Path(argv[0]).name, *argv[1:]])


def _provenance(run: Run) -> str:
    """A card section on how `run` was made: start time, package versions, command line."""
    versions = ", ".join(f"{name} {version}" for name, version in sorted(run.config.get("versions", {}).items()))
    return (
        f"### {' / '.join(run.key)}\n\nStarted {run.timing['started'] or '?'}; {versions}.\n\n"
        f"```bash\n{_command(run.timing)}\n```"
    )


def _card_body(
    runs: Sequence[Run],
    counts: dict[tuple[str, str, str, str], int],
    caseless: Sequence[str],
    repo_id: str,
    example: str,
) -> str:
    """The card below its YAML: what the data is, the runs with their case counts per task, the `caseless` tasks
    (no config), how each run was made, how to load a config (`example` being a task's) and the paper to cite."""
    rows = [{"model": m, "editor": e, "run": r, "task": t, "cases": n} for (m, e, r, t), n in counts.items()]
    listed = ", ".join(f"`{task}`" for task in caseless)
    note = f"\n\nWithout cases, hence without a config (only in `summary`): {listed}." if caseless else ""
    provenance = "\n\n".join(_provenance(run) for run in runs)
    return f"""\
# flextape-bench results

Side effects of knowledge editing on language models, measured with flextape-bench, a re-implementation of the
Seesaw-CF benchmark of "Flex Tape Can't Fix That": Bias and Misinformation in Edited Language Models
(Halevy et al., EMNLP 2024): after editing one person's birthplace, citizenship, gender or field of work, how the
model's beliefs about other people shift, and how unevenly across demographic groups.

## Runs

{markdown_table(rows)}{note}

Each task is a config with one line per case: `model`, `editor`, `run`, `task`, `case_id`, the edit (`rewrite`),
the `probes`, the per-case `metrics`, and the scores before (`pre`) and after (`post`) the edit, per prompt
(p = exp(-mean token NLL) of each target). The `summary` config has one line per run and task: the case count, the
task's aggregate values (`results`), the run's wall time (`seconds`) and configuration (`config`: model, weights
hash, editor hyperparameters, task spec hashes, seed, package versions).

## How the runs were made

{provenance}

## Loading

```python
from datasets import load_dataset

summary = load_dataset("{repo_id}", "{SUMMARY_CONFIG}", split="{SPLIT}")
cases = load_dataset("{repo_id}", "{example}", split="{SPLIT}")
```

## Citation

Seesaw-CF (data: ENSCMA2/flextape, MIT):

```bibtex
{CITATION}
```
"""


def build_dataset_folder(selection: Mapping[Path, Sequence[str]], folder: Path, repo_id: str) -> list[Path]:
    """Write the dataset folder of the selected tasks of finished runs (`selection`: run directory -> task names;
    nothing else of a run is published) into `folder` (new or empty): per run and task with cases a JSON Lines file
    of them, `data/summary.jsonl` and the card `README.md`; returns the files written. Built again from the same
    selection, with the same secrets in the environment, it is byte-identical."""
    check_repo_id(repo_id)
    if folder.exists() and any(folder.iterdir()):
        raise UserError(f"{folder}: not empty; the dataset folder is built into an empty directory")
    secrets = _secrets()
    runs = _load_runs(selection, secrets)
    tasks = sorted({task for run in runs for task in run.tasks})
    if SUMMARY_CONFIG in tasks:
        raise UserError(f"a task named {SUMMARY_CONFIG!r} would clash with the summary config of the dataset")
    summary = _summary_lines(runs)
    shape = _shape_of(summary, SUMMARY_LINE)
    write_atomic(folder / SUMMARY_FILE, _jsonl(summary, shape))
    files, features = {SUMMARY_CONFIG: [SUMMARY_FILE]}, {SUMMARY_CONFIG: Features(_feature(shape))}
    counts: dict[tuple[str, str, str, str], int] = {}
    for task in tasks:
        having = [run for run in runs if task in run.tasks]
        shape, written = _write_task(folder, having, task, secrets)
        counts.update({(*run.key, task): n for run, n in zip(having, written)})
        if shape is not None:
            files[task] = [run.data_file(task) for run, n in zip(having, written) if n]
            features[task] = Features(_feature(shape))
    front = yaml.safe_dump(_card_metadata(files, features, repo_id), sort_keys=False, allow_unicode=True)
    caseless = [task for task in tasks if task not in files]
    example = next((task for task in tasks if task in files), SUMMARY_CONFIG)
    body = _card_body(runs, dict(sorted(counts.items())), caseless, repo_id, example)
    write_atomic(folder / CARD, f"---\n{front}---\n\n{body}")
    return [folder / CARD, *(folder / path for paths in files.values() for path in paths)]


def _token() -> str:
    """HF_TOKEN, else the token saved by `hf auth login`."""
    token = get_token()
    if not token:
        raise UserError(
            "--push-to-hub needs a Hugging Face token with write access: set HF_TOKEN or run `hf auth login`"
        )
    return token


def _http_message(repo_id: str, endpoint: str, error: HfHubHTTPError) -> str:
    """One line: the repository, the status and the Hub's own message (never the request, which holds the token)."""
    status = error.response.status_code if error.response is not None else "?"
    detail = " ".join((error.server_message or "").split())
    hint = f"; the token needs write access to {repo_id.split('/')[0]}" if status in (401, 403) else ""
    return f"--push-to-hub {repo_id}: {endpoint} answered HTTP {status}" + (f" ({detail})" if detail else "") + hint


def push_folder(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Create the dataset repository `repo_id` unless it exists and upload `folder` into it, on the Hub at
    HF_ENDPOINT (default huggingface.co) with the token of HF_TOKEN or the saved login; returns the commit URL."""
    check_repo_id(repo_id)
    if not (folder / CARD).is_file():
        raise UserError(f"{folder}: no {CARD}; build the dataset folder first")
    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    api = HfApi(endpoint=endpoint, token=_token())
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=folder, commit_message="flextape-bench results"
        )
    except HfHubHTTPError as error:
        raise UserError(_http_message(repo_id, endpoint, error)) from None
    except ValueError as error:  # README.md's metadata refused (an HTTP 400 that huggingface_hub re-raises)
        if not isinstance(error.__cause__, HfHubHTTPError):
            raise
        raise UserError(_http_message(repo_id, endpoint, error.__cause__)) from None
    except (HTTP_ERROR, OSError) as error:  # connection refused, offline mode
        raise UserError(f"--push-to-hub {repo_id}: cannot reach {endpoint} ({error})") from None
    return commit.commit_url
