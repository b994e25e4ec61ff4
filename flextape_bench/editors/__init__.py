"""Editor registry: each editor is one module; hyperparameters live in hparams/<editor>/<family>.yaml."""

from __future__ import annotations

from flextape_bench.editors.alphaedit import AlphaEditEditor
from flextape_bench.editors.base import Editor, EditorContext
from flextape_bench.editors.ft import FTEditor
from flextape_bench.editors.hparams import check_overrides, load_hparams, parse_overrides, value_problem
from flextape_bench.editors.memit import MEMITEditor
from flextape_bench.editors.mend import MENDEditor
from flextape_bench.editors.none import NoEditor
from flextape_bench.editors.rome import ROMEEditor
from flextape_bench.registry import Registry
from flextape_bench.weights import WeightDelta

EDITORS: Registry[type[Editor]] = Registry("editor")
EDITORS.add("none", NoEditor, description="no edit: post-edit scores are the pre-edit ones (baseline)")
EDITORS.add(
    "ft",
    FTEditor,
    aliases=("ft-l",),
    description="FT-L: fine-tune one MLP output projection with an L-infinity norm constraint (MEMIT paper baseline)",
)
EDITORS.add(
    "rome", ROMEEditor, description="ROME: rank-one update of one MLP output projection per edit (Meng et al. 2022)"
)
EDITORS.add(
    "memit",
    MEMITEditor,
    description="MEMIT: many edits at once, spread over a layer range by covariance-weighted least squares "
    "(Meng et al. 2023)",
)
EDITORS.add(
    "mend",
    MENDEditor,
    description="MEND: a trained network maps the edit's gradient to a weight change (Mitchell et al. 2022); "
    "train it with `flextape-bench train-mend`",
)
EDITORS.add(
    "alphaedit",
    AlphaEditEditor,
    description="AlphaEdit: MEMIT projected onto the null space of preserved-knowledge keys (Fang et al. 2025)",
)

__all__ = [
    "EDITORS",
    "Editor",
    "EditorContext",
    "WeightDelta",
    "check_overrides",
    "load_hparams",
    "parse_overrides",
    "value_problem",
]
