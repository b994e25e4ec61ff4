"""The target value of ROME/MEMIT: the vector that, added at the subject's last token to a module's output, makes
the model predict the new target after every context template (the papers' loss: target NLL averaged over
templates, plus a KL term keeping "{subject} is a" unchanged, plus weight decay on the added vector, whose norm
is clamped to `clamp_norm_factor` times the original output's norm).

Requests are optimised together in one batch; each has its own vector, loss and early stop, so the result is the
same as optimising them one by one (Adam is element-wise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.hooks import add_at_positions, capture
from flextape_bench.editors.subject import Batch, fill, last_subject_token, pad
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.tokenization import encode_continuation

KL_PROMPT = "{} is a"
EARLY_STOP_NLL = 5e-2


@dataclass(frozen=True)
class ValueHparams:
    """Hyperparameters of the value optimisation (names as in the ROME/MEMIT papers' code)."""

    v_num_grad_steps: int
    v_lr: float
    v_weight_decay: float
    clamp_norm_factor: float
    kl_factor: float
    context_template_count: int  # sampled context templates besides the bare "{}"
    context_template_length: int  # tokens per sampled template


@dataclass
class _Rows:
    batch: Batch
    owner: torch.Tensor  # request index of each row
    kl_rows: list[int]  # one per request
    where: list[tuple[int, int]]  # (row, position) predicting each target token
    labels: torch.Tensor


def _rows(adapter: ModelAdapter, requests: Sequence[EditRequest], templates: Sequence[str]) -> _Rows:
    tok = adapter.tokenizer
    ids, subject_index, owner, kl_rows, where, labels = [], [], [], [], [], []
    for r, request in enumerate(requests):
        for template in templates:
            item = fill(template.replace("{}", request.prompt, 1), request.subject)
            cont = encode_continuation(tok, item.text, request.target_new)
            row = len(ids)
            ids.append(cont.context + cont.target)
            subject_index.append(last_subject_token(tok, item, f"{item.text} {request.target_new}"))
            owner.append(r)
            where += [(row, len(cont.context) - 1 + i) for i in range(len(cont.target))]
            labels += cont.target
        item = fill(KL_PROMPT, request.subject)
        kl_rows.append(len(ids))
        ids.append(tok(item.text)["input_ids"])
        subject_index.append(last_subject_token(tok, item))
        owner.append(r)
    batch = pad(tok, ids, subject_index, adapter.input_device)
    return _Rows(batch, torch.tensor(owner), kl_rows, where, torch.tensor(labels))


def _kl_log_probs(adapter: ModelAdapter, hidden: torch.Tensor, rows: _Rows) -> torch.Tensor:
    at = rows.batch.subject_index[rows.kl_rows]
    return torch.log_softmax(adapter.layout.head_logits(adapter.model, hidden[rows.kl_rows, at]).float(), -1)


def optimize_values(adapter: ModelAdapter, requests: Sequence[EditRequest], site: str, templates: Sequence[str],
                    hp: ValueHparams) -> tuple[torch.Tensor, torch.Tensor]:
    """For each request, (original output, target output) of module `site` at the subject's last token of the bare
    prompt; shapes (n, d)."""
    rows = _rows(adapter, requests, templates)
    batch, module = rows.batch, adapter.model.get_submodule(site)
    n, per = len(requests), len(templates) + 1
    bare_rows = torch.arange(n) * per  # the first template is the bare "{}"
    store: dict[str, torch.Tensor] = {}
    with torch.no_grad(), capture(module, store):
        hidden = adapter.body_hidden(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        init = store["output"][bare_rows.to(store["output"].device), batch.subject_index[bare_rows]].float()
        kl_ref = _kl_log_probs(adapter, hidden, rows)
    delta = torch.zeros_like(init, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=hp.v_lr)
    max_norm = hp.clamp_norm_factor * init.norm(dim=-1)
    row_idx = torch.tensor([w[0] for w in rows.where])
    pos_idx = torch.tensor([w[1] for w in rows.where])
    tokens_per_row = torch.bincount(row_idx, minlength=len(rows.owner)).clamp(min=1)
    rewriting_per_req = torch.full((n,), float(len(templates)))
    active = torch.ones(n, dtype=torch.bool)
    all_rows = torch.arange(len(rows.owner))
    for _ in range(hp.v_num_grad_steps):
        with add_at_positions(module, all_rows, batch.subject_index, delta[rows.owner]):
            hidden = adapter.body_hidden(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        token_nll = adapter.token_nll(hidden[row_idx.to(hidden.device), pos_idx.to(hidden.device)], rows.labels)
        row_nll = torch.zeros(len(rows.owner)).index_add(0, row_idx, token_nll.cpu()) / tokens_per_row
        nll = torch.zeros(n).index_add(0, rows.owner, row_nll) / rewriting_per_req
        kl_cur = _kl_log_probs(adapter, hidden, rows)
        kl = (kl_ref.exp() * (kl_ref - kl_cur)).sum(-1).cpu()
        decay = hp.v_weight_decay * delta.norm(dim=-1) ** 2 / init.norm(dim=-1) ** 2
        active &= nll.detach() >= EARLY_STOP_NLL
        if not active.any():
            break
        loss = (nll + hp.kl_factor * kl + decay.cpu())[active].sum()
        previous = delta.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            delta[~active] = previous[~active]
            norms = delta.norm(dim=-1)
            scale = torch.where(norms > max_norm, max_norm / norms.clamp(min=1e-12), torch.ones_like(norms))
            delta.mul_(scale[:, None])
    return init, (init + delta).detach()
