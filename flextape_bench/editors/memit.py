"""MEMIT (Meng et al. 2023): many edits at once, spread over a range of MLP output projections.

For each request a target hidden state z at the last layer of the range is found by the value optimisation. Then,
layer by layer (each seeing the updates of the earlier ones), with K the requests' keys (compute_ks: averaged within
each context-template type, then across types, so the bare prompt weighs 1/2) and R the remaining residual
(z - current hidden state) divided by the number of layers left, the update solves the covariance-weighted least
squares dW = R K^T (lambda C + K K^T)^-1, C = E[k k^T] over a corpus. Where a norm sits between the MLP output and
the residual stream (Gemma 3), R is first mapped through its inverse.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import Layer, StatisticsCorpus, corpus, length_count, positive, spec_field
from flextape_bench.editors.context import STARTS, memit_templates
from flextape_bench.editors.keyed import KeyStatisticsEditor
from flextape_bench.editors.linear import as_parameter
from flextape_bench.editors.representations import at_subject
from flextape_bench.editors.value import ValueHparams, optimize_values
from flextape_bench.weights import WeightDelta, applied_delta, read_tensor


def _per_start_word(value: list[int]) -> str | None:
    """A [length, count] pair whose count gives each of MEMIT's start words a text (count // 5 each): a smaller
    count leaves the template type empty, whose mean key is undefined."""
    problem = length_count(value)
    if problem is None and len(value) == 2 and 0 <= value[1] < len(STARTS):
        problem = (
            f"{value}: a count of {value[1]} gives each of the {len(STARTS)} start words "
            f"{value[1] // len(STARTS)} "
            f"texts (count // {len(STARTS)}); give a count of {len(STARTS)} or more, e.g. [10, 5]"
        )
    return problem


@dataclass(frozen=True)
class LayerRangeHparams(ValueHparams, StatisticsCorpus):
    """What MEMIT and its descendants share: the edited layer range and the key statistics' corpus."""

    layers: list[Layer] = spec_field("the edited layers, in order; the target is found after the last", nonempty=True)
    context_template_length_params: list[list[int]] = spec_field(
        "[length, count] pairs: count // 5 texts of length tokens from each start word", check=_per_start_word
    )
    mom2_dataset: str = spec_field("the statistics' corpus: wikipedia | model | file:PATH", check=corpus)
    mom2_n_samples: int = spec_field("corpus samples of the statistics", check=positive)
    mom2_max_tokens: int | None = spec_field(
        "cap on tokens per corpus sample; None: the model's full context", check=positive
    )


L = TypeVar("L", bound=LayerRangeHparams)


@dataclass(frozen=True)
class MEMITHparams(LayerRangeHparams):
    mom2_update_weight: float = spec_field(
        "lambda: weight of the preserved keys' statistics against the edits", check=positive
    )


@torch.no_grad()
def through_norm(norm: torch.nn.Module, outputs: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
    """The change of the MLP outputs `outputs` (n, d) that moves `norm(outputs)` by `resid` as closely as possible,
    where `norm` is an RMS norm with gain g between the MLP and the residual stream (Gemma 3).

    norm(x) = g * u with u = x / rms(x), so the reachable outputs are g * u with mean(u^2) = 1. Dimensions with zero
    gain keep their u. For the others, the u closest to y = norm(outputs) + resid solves the constrained least
    squares u_i = g_i y_i / (g_i^2 + mu), with mu found by bisection so that mean(u^2) = 1. The new output keeps the
    old RMS: x = u * rms(outputs).
    """
    outputs = outputs.double()
    scale = outputs.pow(2).mean(-1, keepdim=True).sqrt()
    gain = norm(torch.ones_like(outputs[:1]).float())[0].double()
    target = norm(outputs.float()).double() + resid.double()
    free = gain.abs() < 1e-6
    kept = torch.where(free, outputs / scale, torch.zeros_like(outputs))
    budget = 1 - kept.pow(2).mean(-1, keepdim=True)
    g2 = gain.pow(2)

    def movable(mu: torch.Tensor) -> torch.Tensor:
        return torch.where(free, torch.zeros_like(outputs), gain * target / (g2 + mu))

    def too_long(mu: torch.Tensor) -> torch.Tensor:
        return movable(mu).pow(2).mean(-1, keepdim=True) > budget

    low = torch.full_like(scale, -float(g2[~free].min()) + 1e-12)
    high = torch.ones_like(scale)
    while bool(too_long(high).any()):
        high = torch.where(too_long(high), high * 4, high)
    for _ in range(100):
        mid = (low + high) / 2
        above = too_long(mid)
        low, high = torch.where(above, mid, low), torch.where(above, high, mid)
    return (kept + movable((low + high) / 2)) * scale - outputs


class LayerRangeEditor(KeyStatisticsEditor[L]):
    """MEMIT's update of a layer range, layer by layer; the least-squares `solve` is MEMIT's or a descendant's."""

    @property
    def edited_layers(self) -> list[Layer]:
        return self.hparams.layers

    @abstractmethod
    def solve(self, layer: int, cov: torch.Tensor, keys: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
        """The (in, out) transpose of the layer's update from keys (n, d_in) and residuals (n, d_out), in float64."""

    def sample_templates(self) -> list[list[str]]:
        return memit_templates(self.adapter, self.hparams.context_template_length_params, self.context.seed)

    def compute_delta(self, requests: Sequence[EditRequest]) -> WeightDelta:
        hp, layout, adapter = self.hparams, self.adapter.layout, self.adapter
        templates = self.templates
        z_site = f"{layout.layers}.{hp.layers[-1]}"
        _, z = optimize_values(adapter, requests, z_site, templates, hp)
        covs = self.statistics()
        deltas: WeightDelta = {}
        for i, layer in enumerate(hp.layers):
            name = layout.mlp_out_weight(layer)
            weight = read_tensor(adapter.model, name)
            mlp_out = layout.layer_path(layout.mlp_out, layer)
            with applied_delta(adapter.model, deltas):
                keys = self.keys(requests, layer)
                current = at_subject(adapter, requests, hp.layers[-1], z_site, ["{}"], "output")
                resid = (z.to(current.device) - current) / (len(hp.layers) - i)
                if layout.post_mlp_norm:
                    outputs = at_subject(adapter, requests, layer, mlp_out, ["{}"], "output")
                    norm = adapter.model.get_submodule(layout.layer_path(layout.post_mlp_norm, layer))
                    resid = through_norm(norm, outputs, resid)
            device = covs[layer].device
            update_t = self.solve(layer, covs[layer].double(), keys.double().to(device), resid.double().to(device))
            deltas[name] = as_parameter(layout, update_t.T, weight)
        return deltas


class MEMITEditor(LayerRangeEditor[MEMITHparams]):
    def solve(self, layer: int, cov: torch.Tensor, keys: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
        """dW^T = (lambda C + K^T K)^-1 K^T R."""
        return torch.linalg.solve(self.hparams.mom2_update_weight * cov + keys.T @ keys, keys.T @ resid)
