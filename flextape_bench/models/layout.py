"""Where each architecture keeps the modules that scoring and editors touch, chosen by `config.model_type`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

import torch
from torch import nn

from flextape_bench.errors import UserError


@dataclass(frozen=True)
class Layout:
    """Dotted module paths of one architecture; `{}` in a per-layer path is the layer index."""

    family: str  # hparams files are named after it
    body: str  # the decoder stack returning final-normed hidden states
    layers: str
    mlp: str
    mlp_in: str  # projection(s) whose input is the MLP input (for gated MLPs, the up projection)
    mlp_out: str  # the MLP output projection: the module ROME/MEMIT/FT-L edit
    final_norm: str
    lm_head: str
    embed: str
    conv1d: bool = False  # GPT-2 stores projections as Conv1D, weight shape (in, out)
    post_mlp_norm: str = ""  # a norm between the MLP output and the residual stream (Gemma 3), per layer

    def layer_path(self, template: str, layer: int) -> str:
        return f"{self.layers}.{layer}.{template}"

    def mlp_out_weight(self, layer: int) -> str:
        """Parameter name of layer `layer`'s MLP output projection weight."""
        return f"{self.layer_path(self.mlp_out, layer)}.weight"

    def module(self, model: nn.Module, path: str) -> nn.Module:
        return model.get_submodule(path)

    def layer_list(self, model: nn.Module) -> nn.ModuleList:
        """The model's decoder layers, in order."""
        return cast(nn.ModuleList, model.get_submodule(self.layers))

    def num_layers(self, model: nn.Module) -> int:
        return len(self.layer_list(model))

    def head_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """LM-head logits for final-normed hidden states, with the model's logit soft-capping if it has one."""
        logits = model.get_submodule(self.lm_head)(hidden)
        cap = getattr(model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits


_LLAMA = Layout(
    family="llama",
    body="model",
    layers="model.layers",
    mlp="mlp",
    mlp_in="mlp.up_proj",
    mlp_out="mlp.down_proj",
    final_norm="model.norm",
    lm_head="lm_head",
    embed="model.embed_tokens",
)

LAYOUTS: dict[str, Layout] = {
    "gptj": Layout(
        family="gptj",
        body="transformer",
        layers="transformer.h",
        mlp="mlp",
        mlp_in="mlp.fc_in",
        mlp_out="mlp.fc_out",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        embed="transformer.wte",
    ),
    "gpt2": Layout(
        family="gpt2",
        body="transformer",
        layers="transformer.h",
        mlp="mlp",
        mlp_in="mlp.c_fc",
        mlp_out="mlp.c_proj",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        embed="transformer.wte",
        conv1d=True,
    ),
    "llama": _LLAMA,
    "mistral": replace(_LLAMA, family="mistral"),
    "gemma3_text": replace(_LLAMA, family="gemma3", post_mlp_norm="post_feedforward_layernorm"),
}


def layout_for(model_type: str, hparams_family: str | None = None) -> Layout:
    """The layout for a transformers `model_type`; an unmapped architecture is a user error. `hparams_family`: the
    editors' hyperparameter files of a model tuned on its own, in place of its architecture's family."""
    if model_type not in LAYOUTS:
        raise UserError(
            f"architecture {model_type!r} has no module layout; supported: {', '.join(sorted(LAYOUTS))}. "
            "Add a Layout entry in flextape_bench/models/layout.py to support it."
        )
    layout = LAYOUTS[model_type]
    return replace(layout, family=hparams_family) if hparams_family else layout
