"""The `none` editor: no edit; post-edit scores equal pre-edit scores (the baseline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import Editor
from flextape_bench.weights import WeightDelta


@dataclass(frozen=True)
class NoHparams:
    """The `none` editor has no hyperparameters."""


class NoEditor(Editor[NoHparams]):
    def declared_parameters(self) -> list[str]:
        return []

    def compute_delta(self, requests: Sequence[EditRequest]) -> WeightDelta:
        return {}
