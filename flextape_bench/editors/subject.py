"""Prompts with the subject filled in, tokenized, and the position of the subject's last token in each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from flextape_bench.errors import UserError


@dataclass(frozen=True)
class SubjectText:
    text: str
    subject_start: int  # character span of the subject in `text`
    subject_end: int


def fill(template: str, subject: str) -> SubjectText:
    """Put `subject` where the template's (first) "{}" is, remembering where it went."""
    at = template.index("{}")
    return SubjectText(template[:at] + subject + template[at + 2 :], at, at + len(subject))


def last_subject_token(tokenizer: PreTrainedTokenizerBase, item: SubjectText, text: str | None = None) -> int:
    """Index of the last token that overlaps the subject's characters in `tokenizer(text or item.text)`.

    Found from character offsets, so BOS, SentencePiece's "▁" and leading spaces cannot shift it.
    """
    encoding = tokenizer(text if text is not None else item.text, return_offsets_mapping=True)
    special = set(tokenizer.all_special_ids)
    hits = [
        i
        for i, (tok, (start, end)) in enumerate(zip(encoding["input_ids"], encoding["offset_mapping"]))
        if tok not in special and start < item.subject_end and end > item.subject_start
    ]
    if not hits:
        raise UserError(f"subject of {item.text!r} maps to no token; check the case's subject field")
    return hits[-1]


@dataclass
class Batch:
    """Right-padded token ids with the subject's last-token index per row."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    subject_index: torch.Tensor
    lengths: list[int]


def encode(tokenizer: PreTrainedTokenizerBase, items: Sequence[SubjectText], device: torch.device) -> Batch:
    """Tokenize prompts (no targets) into one right-padded batch."""
    rows = [tokenizer(item.text)["input_ids"] for item in items]
    index = [last_subject_token(tokenizer, item) for item in items]
    return pad(tokenizer, rows, index, device)


def pad(
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Sequence[int]],
    subject_index: Sequence[int],
    device: torch.device,
) -> Batch:
    length = max(map(len, rows))
    fill_id = tokenizer.pad_token_id or 0
    ids = torch.tensor([list(r) + [fill_id] * (length - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows], device=device)
    return Batch(ids, mask, torch.tensor(list(subject_index), device=device), [len(r) for r in rows])
