"""Differentiable teacher-forced NLL of edit targets, with the same token boundary as scoring."""
from __future__ import annotations

from typing import Sequence

import torch

from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.tokenization import encode_continuation


def target_nll(adapter: ModelAdapter, prompts: Sequence[str], targets: Sequence[str]) -> torch.Tensor:
    """Per pair, the mean NLL of the target's tokens after the prompt (right-padded batch, head at scored positions)."""
    conts = [encode_continuation(adapter.tokenizer, p, t) for p, t in zip(prompts, targets)]
    rows = [c.context + c.target for c in conts]
    length = max(map(len, rows))
    device = adapter.input_device
    pad = adapter.tokenizer.pad_token_id or 0
    ids = torch.tensor([list(r) + [pad] * (length - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows], device=device)
    hidden = adapter.body_hidden(input_ids=ids, attention_mask=mask)
    row_idx = [b for b, c in enumerate(conts) for _ in c.target]
    pos_idx = [len(c.context) - 1 + i for c in conts for i in range(len(c.target))]
    labels = torch.tensor([tok for c in conts for tok in c.target], device=hidden.device)
    token_nll = adapter.token_nll(hidden[row_idx, pos_idx], labels)
    sizes = [len(c.target) for c in conts]
    return torch.stack([chunk.mean() for chunk in torch.split(token_nll, sizes)])
