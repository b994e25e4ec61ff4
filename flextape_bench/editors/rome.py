"""ROME (Meng et al. 2022): a rank-one update of one MLP output projection per edit.

Key k* = the projection's input at the subject's last token, averaged over the context templates (compute_u: a plain
mean, the bare prompt one template among 1 + sum of counts); target value v* from the value optimisation; update
dW = (v* - W k0) (C^-1 k*)^T / ((C^-1 k*)^T k0), where k0 is the key of the bare prompt and C = E[k k^T] over a
corpus (mom2 statistics). Several requests in one chunk are applied one after another, as in the paper; the summed
change is returned and the model restored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import Layer, StatisticsCorpus, corpus, length_count, positive, spec_field
from flextape_bench.editors.context import rome_templates
from flextape_bench.editors.keyed import KeyStatisticsEditor
from flextape_bench.editors.linear import as_parameter
from flextape_bench.editors.representations import at_subject
from flextape_bench.editors.value import ValueHparams, optimize_values
from flextape_bench.weights import WeightDelta, applied_delta, read_tensor, working_dtype


@dataclass(frozen=True)
class ROMEHparams(ValueHparams, StatisticsCorpus):
    layer: Layer = spec_field("the layer whose MLP output projection is edited")
    context_template_length_params: list[list[int]] = spec_field(
        "[length, count] pairs: count texts of length tokens each", check=length_count
    )
    mom2_adjustment: bool = spec_field("weigh the key by the inverse of the key statistics C = E[k k^T]")
    mom2_dataset: str = spec_field("the statistics' corpus: wikipedia | model | file:PATH", check=corpus)
    mom2_n_samples: int = spec_field("corpus samples of the statistics", check=positive)
    mom2_max_tokens: int | None = spec_field(
        "cap on tokens per corpus sample; None: the model's full context", check=positive
    )


class ROMEEditor(KeyStatisticsEditor[ROMEHparams]):
    @property
    def edited_layers(self) -> list[Layer]:
        return [self.hparams.layer]

    def sample_templates(self) -> list[list[str]]:
        return [rome_templates(self.adapter, self.hparams.context_template_length_params, self.context.seed)]

    def compute_delta(self, requests: Sequence[EditRequest]) -> WeightDelta:
        hp, layout = self.hparams, self.adapter.layout
        (name,) = self.declared_parameters()
        weight = read_tensor(self.adapter.model, name)
        module = layout.layer_path(layout.mlp_out, hp.layer)
        templates = self.templates
        cov = self.statistics()[hp.layer].double() if hp.mom2_adjustment else None
        total = torch.zeros_like(weight, dtype=working_dtype(weight.dtype))
        for request in requests:  # sequentially: each edit sees the previous ones
            with applied_delta(self.adapter.model, {name: total}):
                k_star = self.keys([request], hp.layer)[0].double()
                k0 = at_subject(self.adapter, [request], hp.layer, module, ["{}"], "input")[0].double()
                v0, v_star = optimize_values(self.adapter, [request], module, templates, hp)
            u = torch.linalg.solve(cov.to(k_star.device), k_star) if cov is not None else k_star
            update = torch.outer((v_star[0] - v0[0]).double().to(u.device), u) / (u @ k0.to(u.device))
            total = total + as_parameter(layout, update, weight)
        return {name: total}
