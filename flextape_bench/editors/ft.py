"""FT-L: fine-tune one MLP output projection under an L-infinity norm constraint (the ROME/MEMIT papers' baseline).

Minimises the NLL of each new target after its edit prompt with Adam; after every step the weights are clamped to
within `norm_constraint` of their originals, element-wise. The model is left as it was; the change is returned.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import Editor, WeightDelta
from flextape_bench.editors.nll import target_nll


@dataclass(frozen=True)
class FTHparams:
    layers: list[int]  # layers whose MLP output projection is fine-tuned
    lr: float
    num_steps: int
    norm_constraint: float  # L-infinity bound on the change of each weight
    weight_decay: float = 0.0
    batch_size: int = 64  # edits per optimisation step
    early_stop_loss: float = 1e-2


class FTEditor(Editor):
    hparams_class = FTHparams

    def declared_parameters(self) -> list[str]:
        return [self.adapter.layout.mlp_out_weight(layer) for layer in self.hparams.layers]

    def compute_delta(self, requests: Sequence[EditRequest]) -> WeightDelta:
        hp: FTHparams = self.hparams
        params = {name: self.adapter.model.get_parameter(name) for name in self.declared_parameters()}
        originals = {name: p.detach().clone() for name, p in params.items()}
        prompts = [r.prompt.replace("{}", r.subject) for r in requests]
        targets = [r.target_new for r in requests]
        for p in params.values():
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params.values(), lr=hp.lr, weight_decay=hp.weight_decay)
        try:
            for _ in range(hp.num_steps):
                total = 0.0
                for start in range(0, len(requests), hp.batch_size):
                    stop = start + hp.batch_size
                    loss = target_nll(self.adapter, prompts[start:stop], targets[start:stop]).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    with torch.no_grad():
                        for name, p in params.items():
                            eps = hp.norm_constraint
                            p.copy_(torch.clamp(p, originals[name] - eps, originals[name] + eps))
                    total += loss.item() * (min(stop, len(requests)) - start)
                if total / len(requests) < hp.early_stop_loss:
                    break
            with torch.no_grad():
                return {name: p.detach() - originals[name] for name, p in params.items()}
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.requires_grad_(False)
                    p.copy_(originals[name])
