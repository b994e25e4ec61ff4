"""Differentiable teacher-forced NLL of edit targets, with the same token boundary as scoring."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.tokenization import encode_continuations


@dataclass(frozen=True)
class TeacherForced:
    """A right-padded batch of prompt + target rows and where each target token is predicted."""

    ids: torch.Tensor
    mask: torch.Tensor
    rows: list[int]  # per target token: its row
    positions: list[int]  # per target token: the position whose output predicts it
    labels: torch.Tensor
    sizes: list[int]  # target tokens per row

    @property
    def predicting(self) -> torch.Tensor:
        """(rows, length) bool: positions at or before each row's last predicting position (the ones the
        targets' NLL depends on)."""
        last = torch.zeros(self.ids.shape[0], dtype=torch.long)
        for row, pos in zip(self.rows, self.positions):
            last[row] = max(int(last[row]), pos)
        return (torch.arange(self.ids.shape[1])[None, :] <= last[:, None]).to(self.ids.device)


def teacher_forced(adapter: ModelAdapter, prompts: Sequence[str], targets: Sequence[str]) -> TeacherForced:
    """Tokenize each prompt + target (target tokens as scoring sees them) into one padded batch."""
    conts = encode_continuations(adapter.tokenizer, list(zip(prompts, targets)))
    rows = [c.context + c.target for c in conts]
    length = max(map(len, rows))
    device = adapter.input_device
    pad = adapter.tokenizer.pad_token_id or 0
    return TeacherForced(
        ids=torch.tensor([list(r) + [pad] * (length - len(r)) for r in rows], device=device),
        mask=torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows], device=device),
        rows=[b for b, c in enumerate(conts) for _ in c.target],
        positions=[len(c.context) - 1 + i for c in conts for i in range(len(c.target))],
        labels=torch.tensor([tok for c in conts for tok in c.target], device=device),
        sizes=[len(c.target) for c in conts],
    )


def batch_nll(adapter: ModelAdapter, batch: TeacherForced, at_prompt_end: bool = False) -> torch.Tensor:
    """Per row, the mean NLL of its target tokens (LM head only at the predicting positions). With `at_prompt_end`,
    every target token is read at the prompt's last position, as if each were the next token (the loss of the
    reference FT-L, ft_main.py)."""
    hidden = adapter.body_hidden(input_ids=batch.ids, attention_mask=batch.mask)
    positions = batch.positions
    if at_prompt_end:  # each row's first predicting position, repeated for its every target token
        starts = [0, *itertools.accumulate(batch.sizes)][:-1]
        positions = [batch.positions[starts[row]] for row in batch.rows]
    token_nll = adapter.token_nll(hidden[batch.rows, positions], batch.labels)
    return torch.stack([chunk.mean() for chunk in torch.split(token_nll, batch.sizes)])


def target_nll(
    adapter: ModelAdapter, prompts: Sequence[str], targets: Sequence[str], at_prompt_end: bool = False
) -> torch.Tensor:
    """Per pair, the mean NLL of the target's tokens after the prompt (see `batch_nll` for `at_prompt_end`)."""
    return batch_nll(adapter, teacher_forced(adapter, prompts, targets), at_prompt_end)
