"""The target value of ROME/MEMIT (compute_v / compute_z of the reference code): the vector delta that, added at the
subject's last token to a module's output h0, makes the model predict the new target after every context template.

    loss(delta) = mean over templates of the target's mean token NLL
                  + kl_factor * KL(p_delta || p_0) of the next token after "{subject} is a"
                  + v_weight_decay * ||delta|| / ||h0||^2

The loss is evaluated at most `v_num_grad_steps` times; after each evaluation the optimisation stops when the loss
is below 5e-2 or this was the last evaluation, else Adam takes one step and delta is clamped to the ball of radius
`clamp_norm_factor * ||h0||` (so at most v_num_grad_steps - 1 steps, as in the reference).

Requests are optimised together in one batch; each has its own vector, loss and early stop, so the result is the
same as optimising them one by one (Adam is element-wise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import at_least_zero, positive, spec_field
from flextape_bench.editors.hooks import add_at_positions, capture
from flextape_bench.editors.subject import Batch, fill, last_subject_token, pad
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.tokenization import encode_continuation
from flextape_bench.weights import working_dtype

KL_PROMPT = "{} is a"
EARLY_STOP_LOSS = 5e-2


@dataclass(frozen=True)
class ValueHparams:
    """Hyperparameters of the value optimisation (names as in the ROME/MEMIT papers' code)."""

    v_num_grad_steps: int = spec_field("most loss evaluations of the value optimisation", check=positive)
    v_lr: float = spec_field("Adam learning rate of the value vector", check=positive)
    v_weight_decay: float = spec_field("weight of ||delta|| / ||h0||^2 in the loss", check=at_least_zero)
    clamp_norm_factor: float = spec_field("delta is clamped to this times ||h0||", check=positive)
    kl_factor: float = spec_field("weight of the KL term that keeps the subject's essence", check=at_least_zero)


@dataclass
class _Rows:
    batch: Batch
    owner: torch.Tensor  # request index of each row
    kl_rows: list[int]  # one per request
    where: list[tuple[int, int]]  # (row, position) predicting each target token
    labels: torch.Tensor


def _rows(adapter: ModelAdapter, requests: Sequence[EditRequest], templates: Sequence[str]) -> _Rows:
    tok = adapter.tokenizer
    ids: list[Sequence[int]] = []
    labels: list[int] = []
    subject_index, owner, kl_rows, where = [], [], [], []
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


def value_loss(
    nll: torch.Tensor,
    kl_init: torch.Tensor,
    kl_current: torch.Tensor,
    delta: torch.Tensor,
    init: torch.Tensor,
    hp: ValueHparams,
) -> torch.Tensor:
    """Per request, the reference's total loss from its mean target NLL (n,), the next-token log-probabilities after
    the KL prompt before and now (n, vocab) and the added vector with the original output (n, d)."""
    # KL(p_current || p_init) = sum p_current (log p_current - log p_init): kl_div(init, current, log_target=True)
    kl = (kl_current.exp() * (kl_current - kl_init)).sum(-1)
    # weight decay on the norm (not its square), scaled by the original output's squared norm
    decay = hp.v_weight_decay * delta.norm(dim=-1) / init.norm(dim=-1) ** 2
    return nll + hp.kl_factor * kl + decay


def optimize_values(
    adapter: ModelAdapter, requests: Sequence[EditRequest], site: str, templates: Sequence[str], hp: ValueHparams
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each request, (original output, target output) of module `site` at the subject's last token of the bare
    prompt; shapes (n, d)."""
    rows = _rows(adapter, requests, templates)
    batch, module = rows.batch, adapter.model.get_submodule(site)
    n, per = len(requests), len(templates) + 1
    bare_rows = torch.arange(n) * per  # the first template is the bare "{}"
    store: dict[str, torch.Tensor] = {}
    with torch.no_grad(), capture(module, store):
        hidden = adapter.body_hidden(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        init = store["output"][bare_rows.to(store["output"].device), batch.subject_index[bare_rows]]
        init = init.to(working_dtype(init.dtype))
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
    for step in range(hp.v_num_grad_steps):
        with add_at_positions(module, all_rows, batch.subject_index, delta[rows.owner]):
            hidden = adapter.body_hidden(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        token_nll = adapter.token_nll(hidden[row_idx.to(hidden.device), pos_idx.to(hidden.device)], rows.labels)
        # mean NLL of each row's target tokens, then the mean over a request's template rows
        row_nll = torch.zeros(len(rows.owner)).index_add(0, row_idx, token_nll.cpu()) / tokens_per_row
        nll = torch.zeros(n).index_add(0, rows.owner, row_nll) / rewriting_per_req
        loss = value_loss(nll, kl_ref.cpu(), _kl_log_probs(adapter, hidden, rows).cpu(), delta.cpu(), init.cpu(), hp)
        # a request stops once its loss is below the threshold; nobody steps after the last evaluation
        active &= loss.detach() >= EARLY_STOP_LOSS
        if step == hp.v_num_grad_steps - 1 or not active.any():
            break
        previous = delta.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        loss[active].sum().backward()
        optimizer.step()
        with torch.no_grad():
            delta[~active] = previous[~active]
            # project back into the ball ||delta|| <= clamp_norm_factor * ||h0||
            norms = delta.norm(dim=-1)
            scale = torch.where(norms > max_norm, max_norm / norms.clamp(min=1e-12), torch.ones_like(norms))
            delta.mul_(scale[:, None])
    return init, (init + delta).detach()
