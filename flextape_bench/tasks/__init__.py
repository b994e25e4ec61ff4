"""Tasks: YAML specs (spec, loader), the index of task folders, data files, and the edit cases built from them."""

from __future__ import annotations

from flextape_bench.tasks.build import load_cases
from flextape_bench.tasks.data import DATA_DIR_ENV, resolve_data_file, sha256_of
from flextape_bench.tasks.index import TaskIndex, select_tasks, validate_file
from flextape_bench.tasks.loader import Problem, TaskSpecError, load_spec, load_task, packaged_tasks_dir
from flextape_bench.tasks.spec import (
    Alternate,
    Candidates,
    CrossProperty,
    DatasetSpec,
    FieldMap,
    GroupSpec,
    LongForm,
    ProbeSpec,
    TaskSpec,
    Templates,
    TruthSource,
)

__all__ = [
    "DATA_DIR_ENV",
    "Alternate",
    "Candidates",
    "CrossProperty",
    "DatasetSpec",
    "FieldMap",
    "GroupSpec",
    "LongForm",
    "ProbeSpec",
    "Problem",
    "TaskIndex",
    "TaskSpec",
    "TaskSpecError",
    "Templates",
    "TruthSource",
    "load_cases",
    "load_spec",
    "load_task",
    "packaged_tasks_dir",
    "resolve_data_file",
    "select_tasks",
    "sha256_of",
    "validate_file",
]
