"""Context templates for ROME/MEMIT: "{}" plus short texts sampled from the model, each followed by ". {}".

Sampling is seeded so that two runs with the same seed use the same templates (they are recorded in results).
"""
from __future__ import annotations

from functools import cached_property
from typing import Any

import torch

from flextape_bench.models.adapter import ModelAdapter

STARTS = ("The", "Therefore", "Because", "I", "You")


@torch.no_grad()
def sample_texts(adapter: ModelAdapter, starts: tuple[str, ...], max_new_tokens: int, seed: int,
                 top_k: int = 5) -> list[str]:
    """One continuation per start text, sampled with top-k under a fixed seed."""
    tok = adapter.tokenizer
    generator = torch.Generator(device="cpu").manual_seed(seed)
    texts = []
    for start in starts:
        ids = tok(start, return_tensors="pt")["input_ids"].to(adapter.input_device)
        for _ in range(max_new_tokens):
            logits = adapter.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float().cpu()
            top = torch.topk(logits, top_k)
            choice = top.indices[torch.multinomial(torch.softmax(top.values, -1), 1, generator=generator)]
            ids = torch.cat([ids, choice.view(1, 1).to(ids.device)], dim=1)
        texts.append(tok.decode(ids[0], skip_special_tokens=True))
    return texts


def context_templates(adapter: ModelAdapter, count: int, length: int, seed: int) -> list[str]:
    """["{}"] + `count` sampled texts of `length` tokens, braces removed, each as "<text>. {}"."""
    starts = tuple(STARTS[i % len(STARTS)] for i in range(count))
    texts = sample_texts(adapter, starts, length, seed) if count else []
    return ["{}"] + [text.replace("{", " ").replace("}", " ").strip() + ". {}" for text in texts]


class SampledTemplates:
    """Mixin for editors whose hyperparameters name `context_template_count` and `context_template_length`: the
    templates are sampled once per editor under the run's seed and recorded in the run's config."""

    @cached_property
    def templates(self) -> list[str]:
        hp = self.hparams  # type: ignore[attr-defined]
        return context_templates(self.adapter, hp.context_template_count, hp.context_template_length,  # type: ignore[attr-defined]
                                 self.context.seed)  # type: ignore[attr-defined]

    def run_record(self) -> dict[str, Any]:
        return {"context_templates": self.templates}
