"""FT-L: fine-tune one MLP output projection under an L-infinity norm constraint (the ROME/MEMIT papers' baseline).

Minimises the NLL of each new target after its edit prompt with Adam; after every step the weights are clamped to
within `norm_constraint` of their originals, element-wise. The weights are trained as copies that hooks add into
the forward pass (as W + (W' - W)), so the model itself is never changed; the change is returned.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Sequence

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import Editor, WeightDelta
from flextape_bench.editors.hooks import add_linear_update
from flextape_bench.editors.nll import target_nll
from flextape_bench.weights import read_tensor


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
        model, conv1d = self.adapter.model, self.adapter.layout.conv1d
        originals = {name: read_tensor(model, name) for name in self.declared_parameters()}
        trained = {name: w.clone().requires_grad_(True) for name, w in originals.items()}
        modules = {name: model.get_submodule(name.rpartition(".")[0]) for name in originals}
        prompts = [r.prompt.replace("{}", r.subject) for r in requests]
        targets = [r.target_new for r in requests]
        optimizer = torch.optim.Adam(trained.values(), lr=hp.lr, weight_decay=hp.weight_decay)
        for _ in range(hp.num_steps):
            total = 0.0
            for start in range(0, len(requests), hp.batch_size):
                stop = start + hp.batch_size
                with ExitStack() as stack:
                    for name, w in trained.items():
                        stack.enter_context(add_linear_update(modules[name], w - originals[name], conv1d))
                    loss = target_nll(self.adapter, prompts[start:stop], targets[start:stop]).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    for name, w in trained.items():
                        eps = hp.norm_constraint
                        w.copy_(torch.clamp(w, originals[name] - eps, originals[name] + eps))
                total += loss.item() * (min(stop, len(requests)) - start)
            if total / len(requests) < hp.early_stop_loss:
                break
        return {name: w.detach() - originals[name] for name, w in trained.items()}
