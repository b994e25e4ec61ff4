"""Batched, exact log-likelihood of target continuations after prompts.

All targets of one request are packed into one row after their shared prompt tokens: a 4D attention mask lets each
target see the prompt and its own earlier tokens only, and position ids restart after the prompt for each target, so
the prompt is computed once and every target is scored as if it followed the prompt alone. The LM head is applied
only at the positions that predict target tokens.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from flextape_bench.cases import Group, Score, ScoreRequest
from flextape_bench.memory import is_out_of_memory
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.progress import progress_bar
from flextape_bench.tokenization import encode_continuations

logger = logging.getLogger(__name__)

SCORER_VERSION = "2"  # 2: requests batched by shared groups (cases.RequestOwners), so the last bits differ from 1


@dataclass(frozen=True)
class _Row:
    """One packed row: prompt tokens, then each target's tokens; `owners` maps targets to (request, target) slots."""

    tokens: tuple[int, ...]
    segments: tuple[int, ...]  # 0 = prompt, k = k-th target of the row
    positions: tuple[int, ...]
    scored: tuple[tuple[int, ...], ...]  # per target: row positions whose logits predict its tokens
    labels: tuple[tuple[int, ...], ...]
    owners: tuple[tuple[int, int], ...]


def _pack(adapter: ModelAdapter, requests: Sequence[ScoreRequest]) -> list[_Row]:
    """Rows for the requests, in request order: per request one for each distinct prompt tokenization (normally
    exactly one). All targets are tokenized together (tokenization.encode_continuations), after each prompt as the
    model reads it (through its chat template where the adapter says so)."""
    pairs = [(r.prompt, t) for r in requests for t in r.targets]
    continuations = iter(encode_continuations(adapter.tokenizer, pairs, adapter.chat_template))
    rows = []
    for index, request in enumerate(requests):
        by_context: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}
        for slot in range(len(request.targets)):
            cont = next(continuations)
            by_context.setdefault(cont.context, []).append((slot, cont.target))
        rows += [_row(index, context, targets) for context, targets in by_context.items()]
    return rows


def _row(index: int, context: tuple[int, ...], targets: list[tuple[int, tuple[int, ...]]]) -> _Row:
    """The row of request `index` for one prompt tokenization and its (target slot, target tokens)."""
    tokens, segments, positions = list(context), [0] * len(context), list(range(len(context)))
    scored, labels, owners = [], [], []
    for seg, (slot, target) in enumerate(targets, start=1):
        start = len(tokens)
        scored.append((len(context) - 1, *range(start, start + len(target) - 1)))
        labels.append(target)
        owners.append((index, slot))
        tokens += target
        segments += [seg] * len(target)
        positions += range(len(context), len(context) + len(target))
    return _Row(tuple(tokens), tuple(segments), tuple(positions), tuple(scored), tuple(labels), tuple(owners))


def _attention_mask(
    segments: torch.Tensor, positions: torch.Tensor, window: int | None, dtype: torch.dtype
) -> torch.Tensor:
    """Additive (batch, 1, L, L) mask: causal, a target sees the prompt and its own segment only, and keys at most
    `window - 1` positions back where the layers use a sliding window (distances measured in position ids)."""
    length = segments.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()
    seg_q, seg_k = segments[:, :, None], segments[:, None, :]
    allowed = causal & ((seg_k == 0) | (seg_k == seg_q)) & (seg_k >= 0)
    if window is not None:
        allowed &= positions[:, :, None] - positions[:, None, :] < window
    allowed |= torch.eye(length, dtype=torch.bool, device=segments.device)  # padding rows attend to themselves
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def attention_masks(config, segments: torch.Tensor, positions: torch.Tensor, dtype: torch.dtype):
    """The mask argument for the model: one mask per layer type where the config mixes full and sliding-window
    layers (Gemma 3), else one mask, windowed where the config sets a sliding window (Mistral)."""
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        return {
            kind: _attention_mask(segments, positions, window if kind == "sliding_attention" else None, dtype)
            for kind in set(layer_types)
        }
    return _attention_mask(segments, positions, window, dtype)


class Scorer:
    """Scores `ScoreRequest`s in length-sorted batches of at most `batch_tokens` padded tokens.

    `halvings`: how many times running out of memory in a batch may halve `batch_tokens` (for the rest of the
    scorer's life) and score that batch again in smaller ones; 0: the error propagates."""

    def __init__(self, adapter: ModelAdapter, batch_tokens: int = 4096, head_chunk: int = 512, halvings: int = 0):
        self.adapter = adapter
        self.batch_tokens = batch_tokens
        self.head_chunk = head_chunk
        self.halvings = halvings

    def score(self, requests: Sequence[ScoreRequest], desc: str | None = None) -> list[tuple[Score, ...]]:
        """Per request, one `Score` per target, in the request's target order."""
        return self.collect(requests, self.scored(self.batches(requests), desc))

    def scored(self, batches: Sequence[list[_Row]], desc: str | None = None) -> Iterator[tuple[tuple[int, int], Score]]:
        """((request index, target index), Score) of every target in `batches`: all of `batches(requests)`, or one
        process's share of them in a distributed run."""
        for batch in progress_bar(batches, desc=desc, unit="batch"):
            yield from self._score_rows(batch)

    @staticmethod
    def collect(
        requests: Sequence[ScoreRequest], scored: Iterable[tuple[tuple[int, int], Score]]
    ) -> list[tuple[Score, ...]]:
        """Per request, its targets' Scores from `scored`, which covers every target of `requests`."""
        results: list[list[Score | None]] = [[None] * len(r.targets) for r in requests]
        for (index, slot), score in scored:
            results[index][slot] = score
        return [tuple(scores) for scores in results]  # type: ignore[arg-type]

    def longest_row(self, requests: Sequence[ScoreRequest]) -> int:
        """Tokens of the longest packed row of `requests` (0 for none)."""
        return max((len(row.tokens) for row in _pack(self.adapter, requests)), default=0)

    def batches(self, requests: Sequence[ScoreRequest]) -> list[list[_Row]]:
        """The requests packed into rows, sorted by length and grouped into batches of at most `batch_tokens`; rows
        of different request groups (ScoreRequest.group) are never in one batch."""
        rows = _pack(self.adapter, requests)

        def group(row: _Row) -> Group:
            return requests[row.owners[0][0]].group

        rows.sort(key=lambda row: (group(row), len(row.tokens)))
        return [batch for _, same in itertools.groupby(rows, key=group) for batch in self._group(list(same))]

    def _group(self, rows: list[_Row]):
        batch: list[_Row] = []
        for row in rows:
            if batch and len(row.tokens) * (len(batch) + 1) > self.batch_tokens:
                yield batch
                batch = []
            batch.append(row)
        if batch:
            yield batch

    def _score_rows(self, rows: list[_Row]) -> list[tuple[tuple[int, int], Score]]:
        """Score `rows` in batches within the current `batch_tokens` (an earlier halving may have lowered it);
        running out of memory with halvings left halves it and scores the failed batch again."""
        out = []
        for batch in self._group(rows):
            try:
                scores = self._score_batch(batch)
            except (RuntimeError, MemoryError) as exc:
                if not (self.halvings and is_out_of_memory(exc)):
                    raise
                scores = None
            if scores is None:  # retried outside the except block, so the failed batch's tensors are freed first
                self.halvings -= 1
                tokens = len(batch) * len(batch[-1].tokens)
                self.batch_tokens = max(min(self.batch_tokens, tokens) // 2, 1)
                logger.warning(
                    f"out of memory scoring a batch of {tokens} padded tokens; batch tokens -> {self.batch_tokens}"
                )
                scores = self._score_rows(batch)
            out += scores
        return out

    def batch_inputs(self, batch: list[_Row]) -> dict[str, Any]:
        """The model inputs of a batch of packed rows: right-padded ids, position ids and the attention mask(s)."""
        adapter, device = self.adapter, self.adapter.input_device
        length = max(len(row.tokens) for row in batch)
        pad = adapter.tokenizer.pad_token_id or 0

        def padded(values: tuple[int, ...], fill: int) -> list[int]:
            return list(values) + [fill] * (length - len(values))

        tokens = torch.tensor([padded(r.tokens, pad) for r in batch], device=device)
        segments = torch.tensor([padded(r.segments, -1) for r in batch], device=device)
        positions = torch.tensor([padded(r.positions, 0) for r in batch], device=device)
        mask = attention_masks(adapter.model.config, segments, positions, adapter.dtype)
        return {"input_ids": tokens, "attention_mask": mask, "position_ids": positions}

    @torch.no_grad()
    def _score_batch(self, batch: list[_Row]) -> list[tuple[tuple[int, int], Score]]:
        adapter = self.adapter
        hidden = adapter.body_hidden(**self.batch_inputs(batch))

        label_ids: list[int] = []
        owners: list[tuple[int, int]] = []
        sizes: list[int] = []
        where: list[tuple[int, int]] = []
        for b, row in enumerate(batch):
            for scored, labels, owner in zip(row.scored, row.labels, row.owners):
                where += [(b, pos) for pos in scored]
                label_ids += labels
                owners.append(owner)
                sizes.append(len(labels))
        nll = self._token_nll(hidden, where, label_ids)
        sums = torch.split(nll.double().cpu(), sizes)
        return [(owner, Score(n_tokens=n, sum_nll=float(s.sum()))) for owner, n, s in zip(owners, sizes, sums)]

    def _token_nll(self, hidden: torch.Tensor, where: list[tuple[int, int]], labels: list[int]) -> torch.Tensor:
        """NLL of each label at its (row, position). The LM head runs once per distinct position (all targets of a
        prompt are predicted first from its last token), in chunks of `head_chunk` positions."""
        distinct = list(dict.fromkeys(where))
        slot = {key: i for i, key in enumerate(distinct)}
        device = hidden.device
        inverse = torch.tensor([slot[key] for key in where], device=device)
        labels_t = torch.tensor(labels, device=device)
        rows, positions = zip(*distinct)
        picked_hidden = hidden[torch.tensor(rows, device=device), torch.tensor(positions, device=device)]
        lse = torch.empty(len(distinct), device=device)
        label_logits = torch.empty(len(labels), device=device)
        for start in range(0, len(distinct), self.head_chunk):
            chunk = picked_hidden[start : start + self.head_chunk]
            logits = self.adapter.layout.head_logits(self.adapter.model, chunk).float()
            lse[start : start + len(logits)] = torch.logsumexp(logits, dim=-1)
            inside = (inverse >= start) & (inverse < start + len(logits))
            label_logits[inside] = logits[inverse[inside] - start, labels_t[inside]]
        return lse[inverse] - label_logits
