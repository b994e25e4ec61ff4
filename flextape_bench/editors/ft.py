"""FT-L: fine-tune one MLP output projection under an L-infinity norm constraint (the ROME/MEMIT papers' baseline,
the reference's baselines/ft/ft_main.py `execute_ft`).

The projection's weight and, where it has one, its bias (the reference trains every parameter of the module) are
trained with Adam in float32 for `num_steps` epochs over the edits in batches of `batch_size`:

    loss = mean over edits of the mean over target tokens t of -log p(t | prompt)       (loss: prompt_end)

with every target token read at the prompt's last position, as the reference does (`loss: teacher_forced` reads
token i after the prompt and tokens < i instead). A batch whose loss is below `early_stop_loss` takes no step; after
every batch each parameter is clamped to within `norm_constraint` of its original, element-wise; an epoch whose mean
loss is below `early_stop_loss` ends training. The parameters are trained as float32 copies that hooks add into the
forward pass (as W + (W' - W)), so the model itself is never changed; the change is returned in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import Editor, Layer, at_least_zero, positive, spec_field
from flextape_bench.editors.hooks import add_linear_update
from flextape_bench.editors.nll import batch_nll, teacher_forced
from flextape_bench.weights import WeightDelta, read_tensor, working_dtype


@dataclass(frozen=True)
class FTHparams:
    layers: list[Layer] = spec_field("layers whose MLP output projection is fine-tuned", nonempty=True)
    lr: float = spec_field("Adam learning rate", check=positive)
    num_steps: int = spec_field("epochs over the edits", check=positive)
    norm_constraint: float = spec_field("L-infinity bound on the change of each weight", check=positive)
    weight_decay: float = spec_field("Adam weight decay", default=0.0, check=at_least_zero)
    batch_size: int = spec_field("edits per optimisation step (the reference's default)", default=128, check=positive)
    early_stop_loss: float = spec_field(
        "a batch or epoch with a lower mean loss stops training", default=1e-2, check=at_least_zero
    )
    loss: Literal["prompt_end", "teacher_forced"] = spec_field(
        "prompt_end: every target token at the prompt's last position (the reference); teacher_forced: token i "
        "after the prompt and tokens < i",
        default="prompt_end",
    )


class FTEditor(Editor[FTHparams]):
    def _modules(self) -> list[str]:
        return [self.adapter.layout.layer_path(self.adapter.layout.mlp_out, layer) for layer in self.hparams.layers]

    def declared_parameters(self) -> list[str]:
        model = self.adapter.model
        return [
            f"{path}.{leaf}"
            for path in self._modules()
            for leaf in ("weight", "bias")
            if getattr(model.get_submodule(path), leaf, None) is not None
        ]

    def compute_delta(self, requests: Sequence[EditRequest]) -> WeightDelta:
        hp = self.hparams
        model, conv1d = self.adapter.model, self.adapter.layout.conv1d
        originals = {name: read_tensor(model, name) for name in self.declared_parameters()}
        originals = {name: w.to(working_dtype(w.dtype)) for name, w in originals.items()}
        trained = {name: w.clone().requires_grad_(True) for name, w in originals.items()}
        prompts = [r.prompt.replace("{}", r.subject) for r in requests]
        targets = [r.target_new for r in requests]
        spans = [(start, min(start + hp.batch_size, len(requests))) for start in range(0, len(requests), hp.batch_size)]
        batches = [teacher_forced(self.adapter, prompts[a:b], targets[a:b]) for a, b in spans]  # tokenized once
        optimizer = torch.optim.Adam(trained.values(), lr=hp.lr, weight_decay=hp.weight_decay)
        for _ in range(hp.num_steps):
            total = 0.0
            for (start, stop), batch in zip(spans, batches):
                with ExitStack() as stack:
                    for path in self._modules():
                        change = {
                            leaf: trained[f"{path}.{leaf}"] - originals[f"{path}.{leaf}"]
                            for leaf in ("weight", "bias")
                            if f"{path}.{leaf}" in trained
                        }
                        stack.enter_context(
                            add_linear_update(model.get_submodule(path), change["weight"], conv1d, change.get("bias"))
                        )
                    loss = batch_nll(self.adapter, batch, at_prompt_end=hp.loss == "prompt_end").mean()
                # a batch already below the stopping loss takes no step
                if loss.item() >= hp.early_stop_loss:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                # clamp each parameter to the L-inf ball around its original
                with torch.no_grad():
                    for name, w in trained.items():
                        eps = hp.norm_constraint
                        w.copy_(torch.clamp(w, originals[name] - eps, originals[name] + eps))
                total += loss.item() * (stop - start)
            if total / len(requests) < hp.early_stop_loss:
                break
        return {name: w.detach() - originals[name] for name, w in trained.items()}
