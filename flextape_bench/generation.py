"""Seeded, batched text generation for the long_form metric.

Each request carries its own seed: its tokens are drawn with a `torch.Generator` of that seed (on the CPU, from
float32 probabilities), never from the global random state, so the same request gives the same text whatever else is
in the batch or was sampled before. The runner derives the seed from the run seed, the case id, the prompt and the
sample index, and uses the same seed before and after the edit: the two texts then share their random draws, and
what differs between them comes from the edit, not from sampling noise.

Prompts are batched with left padding (attention mask and position ids skip the padding), decoded with a KV cache,
and each row stops at the model's end-of-sequence token(s) or after `max_new_tokens`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch

from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.progress import progress_bar
from flextape_bench.tokenization import model_text

GENERATION_VERSION = "1"


@dataclass(frozen=True)
class Decoding:
    """How tokens are chosen: greedy (`do_sample` False) or sampled from the temperature-scaled distribution
    restricted to the `top_k` most likely tokens (0 = all) and to the nucleus of mass `top_p` (1.0 = all)."""

    max_new_tokens: int = 100
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be greater than 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be 0 (off) or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    seed: int = 0


@dataclass(frozen=True)
class Generation:
    """A generated continuation (without the prompt), its token count, and whether it ended at an EOS token
    (False: cut at max_new_tokens)."""

    text: str
    n_tokens: int
    stopped: bool


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from JSON-serialisable parts (e.g. run seed, case id, prompt, sample index)."""
    digest = hashlib.blake2b(json.dumps(parts, ensure_ascii=False).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def eos_token_ids(adapter: ModelAdapter) -> tuple[int, ...]:
    """The tokenizer's EOS token and those of the model's generation config (Gemma 3 lists two)."""
    ids: list[int] = []
    config = getattr(adapter.model, "generation_config", None)
    for value in (adapter.tokenizer.eos_token_id, getattr(config, "eos_token_id", None)):
        for token in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(token, int) and token not in ids:
                ids.append(token)
    return tuple(ids)


def filter_logits(logits: torch.Tensor, decoding: Decoding) -> torch.Tensor:
    """(rows, vocab) logits divided by the temperature, with the tokens outside top-k and outside the top-p
    nucleus set to -inf. Ties at the k-th value are kept; the most likely token always stays."""
    logits = logits.float() / decoding.temperature
    vocab = logits.shape[-1]
    if 0 < decoding.top_k < vocab:
        kth = torch.topk(logits, decoding.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if decoding.top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the more likely tokens
        drop = before >= decoding.top_p
        drop[:, 0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return logits


def choose_tokens(logits: torch.Tensor, decoding: Decoding, generators: Sequence[torch.Generator | None]) -> list[int]:
    """One token per row of (rows, vocab) logits: argmax, or a draw with that row's generator (CPU, float32).

    With top-k on, the draw is made among the k most likely tokens only (`torch.topk` order: descending, so the
    same logits give the same draw); this skips a softmax over the whole vocabulary at every step."""
    if not decoding.do_sample:
        return logits.float().argmax(dim=-1).tolist()
    logits = logits.float().cpu()
    candidates = None
    if 0 < decoding.top_k < logits.shape[-1]:
        logits, candidates = torch.topk(logits, decoding.top_k, dim=-1)
        decoding = dataclasses.replace(decoding, top_k=0)
    probs = torch.softmax(filter_logits(logits, decoding), dim=-1)
    picks = [int(torch.multinomial(probs[i], 1, generator=g)) for i, g in enumerate(generators)]
    return picks if candidates is None else [int(candidates[i, k]) for i, k in enumerate(picks)]


def _cache_argument(body: torch.nn.Module) -> str:
    """The name under which the decoder takes its KV cache: `cache` (transformers >= 5.2x) or
    `past_key_values` (earlier)."""
    return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"


def _cache_of(output: Any) -> Any:
    cache = output.get("cache") if hasattr(output, "get") else None
    return cache if cache is not None else output.past_key_values


class TextGenerator:
    """Generates continuations of prompts under one decoding setting, in length-sorted batches of at most
    `batch_tokens` padded tokens (prompt plus max_new_tokens per row)."""

    def __init__(
        self,
        adapter: ModelAdapter,
        decoding: Decoding,
        batch_tokens: int = 4096,
        add_special_tokens: bool = True,
        eos_ids: Sequence[int] | None = None,
        max_batch: int = 64,
    ):
        self.adapter, self.decoding = adapter, decoding
        self.batch_tokens, self.max_batch = batch_tokens, max_batch
        self.add_special_tokens = add_special_tokens  # False for prompts that already hold BOS (chat templates)
        self.eos_ids = tuple(eos_ids) if eos_ids is not None else eos_token_ids(adapter)

    def encode(self, prompt: str) -> list[int]:
        """The token ids of `prompt` as the model reads it (through its chat template where the adapter says so)."""
        chat = self.adapter.chat_template
        text = model_text(self.adapter.tokenizer, prompt, chat)
        ids = self.adapter.tokenizer(text, add_special_tokens=self.add_special_tokens and not chat)["input_ids"]
        if not ids:
            raise ValueError(f"the prompt {prompt!r} has no tokens; generation needs at least one")
        return list(ids)

    def longest_row(self, prompts: Sequence[str]) -> int:
        """Padded tokens of the longest row among `prompts` (at least one): its prompt plus max_new_tokens."""
        return max(len(self.encode(prompt)) for prompt in prompts) + self.decoding.max_new_tokens

    def generate(self, requests: Sequence[GenerationRequest], desc: str | None = None) -> list[Generation]:
        """One Generation per request, in request order."""
        encoded = [self.encode(r.prompt) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: len(encoded[i]))
        batches: list[list[int]] = []
        batch: list[int] = []
        for i in order:
            rows = len(batch) + 1
            if batch and (
                rows > self.max_batch or rows * (len(encoded[i]) + self.decoding.max_new_tokens) > self.batch_tokens
            ):
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
        out: list[Generation | None] = [None] * len(requests)
        for batch in progress_bar(batches, desc=desc, unit="batch"):
            results = self._batch([encoded[i] for i in batch], [requests[i].seed for i in batch])
            for i, result in zip(batch, results):
                out[i] = result
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def _batch(self, prompts: list[list[int]], seeds: list[int]) -> list[Generation]:
        adapter, device = self.adapter, self.adapter.input_device
        tokenizer = adapter.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.eos_ids or (0,))[0]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generators = [torch.Generator().manual_seed(seed) if self.decoding.do_sample else None for seed in seeds]
        body = adapter.model.get_submodule(adapter.layout.body)
        cache_arg = _cache_argument(body)
        out = body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        new: list[list[int]] = [[] for _ in prompts]
        stopped = [False] * len(prompts)
        eos = set(self.eos_ids)
        for step in range(self.decoding.max_new_tokens):
            logits = adapter.layout.head_logits(adapter.model, out.last_hidden_state[:, -1])
            live = [i for i in range(len(prompts)) if not stopped[i]]
            chosen = choose_tokens(logits[live], self.decoding, [generators[i] for i in live])
            step_tokens = [pad] * len(prompts)
            for i, token in zip(live, chosen):
                if token in eos:
                    stopped[i] = True
                else:
                    new[i].append(token)
                    step_tokens[i] = token
            if all(stopped) or step == self.decoding.max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones(len(prompts), 1, dtype=mask.dtype, device=device)], dim=1)
            positions = positions[:, -1:] + 1
            out = body(
                input_ids=torch.tensor(step_tokens, device=device)[:, None],
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{cache_arg: _cache_of(out)},
            )
        return [
            Generation(self.decode(prompt, tokens), len(tokens), done)
            for prompt, tokens, done in zip(prompts, new, stopped)
        ]

    def decode(self, prompt: list[int], tokens: list[int]) -> str:
        """The continuation's text as it reads after the prompt (decoded together with the prompt, so that a
        leading space survives SentencePiece decoding)."""

        def text(ids: list[int]) -> str:  # one sequence of ids decodes to one str
            return cast(str, self.adapter.tokenizer.decode(ids, skip_special_tokens=True))

        head, full = text(prompt), text(prompt + tokens)
        return full[len(head) :] if full.startswith(head) else text(tokens)
