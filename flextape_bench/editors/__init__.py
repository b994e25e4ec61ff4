"""Editor registry: each editor is one module; hyperparameters live in hparams/<editor>/<family>.yaml."""
from __future__ import annotations

from flextape_bench.editors.base import Editor, WeightDelta, check_overrides, load_hparams, parse_overrides
from flextape_bench.editors.ft import FTEditor
from flextape_bench.editors.none import NoEditor
from flextape_bench.registry import Registry

EDITORS: Registry[type[Editor]] = Registry("editor")
EDITORS.add("none", NoEditor, description="no edit: post-edit scores are the pre-edit ones (baseline)")
EDITORS.add(
    "ft",
    FTEditor,
    aliases=("ft-l",),
    description="FT-L: fine-tune one MLP output projection with an L-infinity norm constraint (MEMIT paper baseline)",
)

__all__ = ["EDITORS", "Editor", "WeightDelta", "check_overrides", "load_hparams", "parse_overrides"]
