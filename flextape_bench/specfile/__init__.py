"""Located YAML: spec files parsed with the file and line of every value (no anchors or aliases), `include` bases
deep-merged within allowed folders, and mappings converted into dataclasses declared with `spec_field`, every
problem reported with its file, line and dotted key. Task specs, groups, lexicons and editor hyperparameters all read
their files through this layer."""

from __future__ import annotations

from flextape_bench.specfile.convert import INVALID, Converter, suggest
from flextape_bench.specfile.fields import (
    Check,
    at_least_zero,
    positive,
    required,
    spec_field,
    typed_fields,
    yaml_fields,
)
from flextape_bench.specfile.include import INCLUDE, include_roots, load_merged, merge
from flextape_bench.specfile.located import Located, Problem, Problems, SpecFileError, as_located, describe_value
from flextape_bench.specfile.parsing import NoAliasLoader, is_alias_error, parse, parse_located, yaml_why

__all__ = [
    "INCLUDE",
    "INVALID",
    "Check",
    "Converter",
    "Located",
    "NoAliasLoader",
    "Problem",
    "Problems",
    "SpecFileError",
    "as_located",
    "at_least_zero",
    "describe_value",
    "include_roots",
    "is_alias_error",
    "load_merged",
    "merge",
    "parse",
    "parse_located",
    "positive",
    "required",
    "spec_field",
    "suggest",
    "typed_fields",
    "yaml_fields",
    "yaml_why",
]
