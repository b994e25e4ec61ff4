"""The editors that weigh keys against key statistics (ROME, MEMIT, AlphaEdit): what they share.

Each edits the MLP output projections of some layers. Its context templates are sampled from the model once, under
the run's seed, and recorded in the run's config; C = E[k k^T] of each edited layer's keys comes from a corpus
(covariance.py, cached); a request's key is the projection's input at the subject's last token, averaged within each
template type, then across types.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from functools import cached_property
from typing import Any, TypeVar

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import Editor
from flextape_bench.editors.covariance import CorpusSettings, layer_second_moments
from flextape_bench.editors.representations import at_subject_by_type
from flextape_bench.editors.value import value_record

K = TypeVar("K", bound=CorpusSettings)  # the editor's hyperparameters, with the statistics' corpus settings


class KeyStatisticsEditor(Editor[K]):
    """An editor of the MLP output projections of `edited_layers`, with context templates, key statistics and the
    keys at the subject."""

    @property
    @abstractmethod
    def edited_layers(self) -> Sequence[int]:
        """The layers whose MLP output projection is edited, in order."""

    @abstractmethod
    def sample_templates(self) -> list[list[str]]:
        """The context templates by type, sampled from the model under the run's seed."""

    def declared_parameters(self) -> list[str]:
        return [self.adapter.layout.mlp_out_weight(layer) for layer in self.edited_layers]

    @cached_property
    def template_groups(self) -> list[list[str]]:
        """The templates by type; the bare "{}" is the first template of the first type."""
        return self.sample_templates()

    @property
    def templates(self) -> list[str]:
        """Every template, the bare "{}" first."""
        return [t for group in self.template_groups for t in group]

    def run_record(self) -> dict[str, Any]:
        return {"context_templates": self.template_groups, "value_optimisation": value_record()}

    def statistics(self) -> dict[int, torch.Tensor]:
        """E[k k^T] of every edited layer's keys (cached on disk)."""
        ctx = self.context
        return layer_second_moments(self.adapter, ctx.cache, ctx.weights, self.hparams, self.edited_layers, ctx.seed)

    def keys(self, requests: Sequence[EditRequest], layer: int) -> torch.Tensor:
        """(n, d_in), at least float32: each request's key at `layer` on the model as it is now, averaged within each
        template type, then across types (one type: a plain mean over the templates)."""
        module = self.adapter.layout.layer_path(self.adapter.layout.mlp_out, layer)
        return at_subject_by_type(self.adapter, requests, layer, module, self.template_groups, "input")
