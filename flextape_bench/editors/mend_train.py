"""Training MEND's editor network for one model (`flextape-bench train-mend`).

Each step edits a batch of training requests with the current network (MEND's forward: gradient factors ->
g -> weight change), then minimises the paper's loss on the edited model,
    L = c_edit * L_edit + c_loc * L_loc,
L_edit the NLL of the new target after a rephrased edit prompt (a context template sampled from the model, as
ROME/MEMIT use, in front of the prompt) and L_loc = KL(p_before || p_after) over the next-token distributions of
unrelated text, averaged over token positions (estimated on `loc_positions` random positions per step). Only g,
the normalisers and the step sizes learn; the model is never changed. Requests come from task cases that evaluation
does not use: each task's first `holdout` cases, and every request about their subjects, are excluded; `val_size`
more are held back to report efficacy after training.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from flextape_bench.cases import EditCase, EditRequest
from flextape_bench.editors.context import context_templates
from flextape_bench.editors.covariance import cached_corpus, stats_folder
from flextape_bench.editors.mend import (
    MENDHparams,
    MENDNetwork,
    applied_updates,
    edited_modules,
    gradient_factors,
    request_key,
    save_checkpoint,
)
from flextape_bench.editors.nll import batch_nll, target_nll, teacher_forced
from flextape_bench.errors import UserError
from flextape_bench.models.adapter import ModelAdapter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSplit:
    train: list[EditRequest]
    val: list[EditRequest]
    excluded: int  # requests left out because their case or subject is held out for evaluation


def split_requests(
    cases_by_task: dict[str, Sequence[EditCase]], holdout: int, val_size: int, seed: int
) -> TrainingSplit:
    """Training and validation requests from every task's cases after its first `holdout`, never about a held-out
    subject; duplicates (the same edit in several tasks) count once."""
    held_subjects = {c.rewrite.subject for cases in cases_by_task.values() for c in cases[:holdout]}
    pool: dict[str, EditRequest] = {}
    excluded = 0
    for cases in cases_by_task.values():
        for case in cases[holdout:]:
            request = EditRequest.from_rewrite(case.rewrite, case.case_id)
            if request.subject in held_subjects:
                excluded += 1
            else:
                pool.setdefault(request_key(request), request)
    requests = [pool[k] for k in sorted(pool)]
    random.Random(seed).shuffle(requests)
    if len(requests) <= val_size:
        raise UserError(
            f"train-mend: only {len(requests)} training edits after holding out the first {holdout} cases "
            "of each task; lower --holdout or add --tasks"
        )
    return TrainingSplit(requests[val_size:], requests[:val_size], excluded)


def _prompts(requests: Sequence[EditRequest]) -> list[str]:
    return [r.prompt.replace("{}", r.subject) for r in requests]


def locality_kl(
    adapter: ModelAdapter,
    texts: Sequence[str],
    max_tokens: int,
    positions: int,
    rng: random.Random,
    edited: Callable[[], Any],
) -> torch.Tensor:
    """Mean over token positions of KL(p_unedited || p_edited) on `texts`, estimated on `positions` positions drawn
    at random (the full-vocabulary head dominates the cost); `edited()` is a context manager that applies the
    edit."""
    enc = adapter.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
    ids, mask = enc["input_ids"].to(adapter.input_device), enc["attention_mask"].to(adapter.input_device)
    valid = mask.flatten().nonzero()[:, 0].tolist()
    chosen = torch.tensor(sorted(rng.sample(valid, min(positions, len(valid)))), device=ids.device)

    def log_probs() -> torch.Tensor:
        hidden = adapter.body_hidden(input_ids=ids, attention_mask=mask).flatten(0, 1)[chosen]
        return torch.log_softmax(adapter.layout.head_logits(adapter.model, hidden).float(), dim=-1)

    with torch.no_grad():
        before = log_probs()
    with edited():
        after = log_probs()
    return (before.exp() * (before - after)).sum(-1).mean()


@torch.no_grad()
def efficacy(adapter: ModelAdapter, network: MENDNetwork, requests: Sequence[EditRequest]) -> tuple[float, float]:
    """Share of requests with p(new) > p(true) after their edit prompt, before and after each one's MEND edit
    (applied alone)."""
    before = after = 0
    for request in requests:
        prompts, targets = _prompts([request]) * 2, [request.target_new, request.target_true]
        nll = target_nll(adapter, prompts, targets)
        before += int(nll[0] < nll[1])
        updates = network.updates(
            gradient_factors(adapter, network.targets, teacher_forced(adapter, prompts[:1], targets[:1]))
        )
        with applied_updates(adapter, updates):
            nll = target_nll(adapter, prompts, targets)
        after += int(nll[0] < nll[1])
    return before / len(requests), after / len(requests)


def train_mend(
    adapter: ModelAdapter,
    hparams: MENDHparams,
    split: TrainingSplit,
    weights: str,
    cache: Path,
    seed: int,
    path: Path,
    log_every: int = 25,
) -> dict[str, Any]:
    """Train the editor network, save it to `path` and return the training record (also stored in the file)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    started = time.time()
    modules = edited_modules(adapter, hparams.layers)
    network = MENDNetwork(modules, hparams.rank, hparams.edit_lr).to(adapter.input_device).train()
    templates = context_templates(adapter, hparams.context_template_count, hparams.context_template_length, seed)
    loc_texts = cached_corpus(
        adapter, stats_folder(cache, weights), hparams.loc_corpus, hparams.loc_n_samples, hparams.loc_max_tokens, seed
    )
    step_sizes = list(network.step_sizes.parameters())
    others = [p for n, p in network.named_parameters() if not n.startswith("step_sizes.")]
    optimizer = torch.optim.Adam([{"params": others, "lr": hparams.lr}, {"params": step_sizes, "lr": hparams.lr_lr}])
    history, window = [], []
    for step in range(1, hparams.steps + 1):
        requests = rng.sample(split.train, min(hparams.train_batch_size, len(split.train)))
        prompts, targets = _prompts(requests), [r.target_new for r in requests]
        updates = network.updates(gradient_factors(adapter, modules, teacher_forced(adapter, prompts, targets)))
        rephrased = [rng.choice(templates).replace("{}", p) for p in prompts]
        with applied_updates(adapter, updates):
            l_edit = batch_nll(adapter, teacher_forced(adapter, rephrased, targets)).mean()
        l_loc = locality_kl(
            adapter,
            rng.sample(loc_texts, min(hparams.loc_batch_size, len(loc_texts))),
            hparams.loc_max_tokens,
            hparams.loc_positions,
            rng,
            partial(applied_updates, adapter, updates),
        )
        loss = hparams.c_edit * l_edit + hparams.c_loc * l_loc
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), hparams.grad_clip)
        optimizer.step()
        window.append((l_edit.item(), l_loc.item()))
        if step % log_every == 0 or step == hparams.steps:
            edit_mean = sum(e for e, _ in window) / len(window)
            loc_mean = sum(k for _, k in window) / len(window)
            history.append({"step": step, "l_edit": edit_mean, "l_loc": loc_mean})  # no times: the file is the same
            log.info(
                "step %d/%d: L_edit %.3f  L_loc %.4f  (%.0f s)",
                step,
                hparams.steps,
                edit_mean,
                loc_mean,
                time.time() - started,
            )
            window = []
    network.eval()
    pre, post = efficacy(adapter, network, split.val)
    record = {
        "steps": hparams.steps,
        "train_requests": len(split.train),
        "val_requests": len(split.val),
        "excluded_requests": split.excluded,
        "val_efficacy_pre": pre,
        "val_efficacy_post": post,
        "history": history,
        "context_templates": templates,
        "seed": seed,
    }
    save_checkpoint(
        path, network, hparams, weights, adapter.name, [request_key(r) for r in split.train + split.val], record
    )
    return record
