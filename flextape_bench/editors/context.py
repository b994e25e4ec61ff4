"""Context templates: "{}" plus short texts sampled from the model, each followed by ". {}".

ROME and MEMIT sample them differently (rome_main.py / memit_main.py `get_context_templates`); both are here, with
lengths counted as the reference's `generate_fast(max_out_len=...)` counts them: tokens in all, start included.
Sampling is seeded so that two runs with the same seed use the same templates (they are recorded in results).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import cast

import torch

from flextape_bench.models.adapter import ModelAdapter

STARTS = ("The", "Therefore", "Because", "I", "You")  # MEMIT's start words


@torch.no_grad()
def sample_texts(
    adapter: ModelAdapter, prompts: Sequence[Sequence[int]], new_tokens: Sequence[int], seed: int, top_k: int = 5
) -> list[str]:
    """One continuation per prompt (token ids) of `new_tokens[i]` tokens, sampled top-k from one generator seeded
    with `seed`, decoded (prompt included) without special tokens."""
    tok = adapter.tokenizer
    generator = torch.Generator(device="cpu").manual_seed(seed)
    texts = []
    for prompt, count in zip(prompts, new_tokens):
        ids = torch.tensor([list(prompt)], device=adapter.input_device)
        for _ in range(count):
            logits = adapter.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float().cpu()
            top = torch.topk(logits, top_k)
            choice = top.indices[torch.multinomial(torch.softmax(top.values, -1), 1, generator=generator)]
            ids = torch.cat([ids, choice.view(1, 1).to(ids.device)], dim=1)
        texts.append(cast(str, tok.decode(ids[0], skip_special_tokens=True)))  # one sequence: one text
    return texts


def _sampled(adapter: ModelAdapter, prompts: Sequence[Sequence[int]], lengths: Sequence[int], seed: int) -> list[str]:
    """Texts grown from `prompts` to `lengths` tokens in all, cleaned as generate_fast cleans them (NFKD, blank lines
    to spaces)."""
    new = [max(length - len(prompt), 0) for prompt, length in zip(prompts, lengths)]
    return [unicodedata.normalize("NFKD", t).replace("\n\n", " ") for t in sample_texts(adapter, prompts, new, seed)]


def rome_templates(adapter: ModelAdapter, length_params: Sequence[Sequence[int]], seed: int) -> list[str]:
    """ROME's templates: "{}" and, per (length, count) of `length_params`, `count` texts sampled from the model's
    start token (BOS, else EOS: GPT-2's <|endoftext|>), braces deleted, each + ". {}"."""
    tok = adapter.tokenizer
    start = [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
    lengths = [length for length, count in length_params for _ in range(count)]
    texts = _sampled(adapter, [start] * len(lengths), lengths, seed)
    return ["{}"] + [t.replace("{", "").replace("}", "") + ". {}" for t in texts]


def memit_templates(adapter: ModelAdapter, length_params: Sequence[Sequence[int]], seed: int) -> list[list[str]]:
    """MEMIT's templates by type: [["{}"]] and, per (length, count), `count // 5` texts from each of the start words
    "The", "Therefore", "Because", "I", "You", braces replaced by spaces, each + ". {}"."""
    groups = [["{}"]]
    for i, (length, count) in enumerate(length_params):
        prompts = [list(adapter.tokenizer(start)["input_ids"]) for start in STARTS for _ in range(count // len(STARTS))]
        texts = _sampled(adapter, prompts, [length] * len(prompts), seed + i)
        groups.append([t.replace("{", " ").replace("}", " ") + ". {}" for t in texts])
    return groups


def context_templates(adapter: ModelAdapter, count: int, length: int, seed: int) -> list[str]:
    """MEND's rephrasings: ["{}"] + `count` texts of `length` new tokens after the start words, braces removed,
    each as "<text>. {}"."""
    prompts = [list(adapter.tokenizer(STARTS[i % len(STARTS)])["input_ids"]) for i in range(count)]
    texts = sample_texts(adapter, prompts, [length] * count, seed)
    return ["{}"] + [text.replace("{", " ").replace("}", " ").strip() + ". {}" for text in texts]
