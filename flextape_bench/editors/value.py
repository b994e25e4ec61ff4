"""The target value of ROME/MEMIT (compute_v / compute_z of the reference code): the vector delta that, added at the
subject's last token to a module's output h0, makes the model predict the new target after every context template.

    loss(delta) = mean over templates of the target's mean token NLL
                  + kl_factor * KL(p_delta || p_0) of the next token after "{subject} is a"
                  + v_weight_decay * ||delta|| / ||h0||^2

The loss is evaluated at most `v_num_grad_steps` times; after each evaluation the optimisation stops when the loss
is below 5e-2 or this was the last evaluation, else Adam takes one step and delta is clamped to the ball of radius
`clamp_norm_factor * ||h0||` (so at most v_num_grad_steps - 1 steps, as in the reference).

Each request has its own vector, loss and early stop, so optimising requests together gives what optimising them one
by one would (Adam is element-wise), up to float rounding. What delta cannot change is computed once, which sets the
cost, not the result:
- requests go in sub-batches whose scored positions need at most `LOGIT_BUDGET` LM-head logits, which bounds the
  memory whatever the number of edits;
- delta cannot change what enters the layer holding `site`: each sub-batch runs the layers below once, and each
  step runs only that layer and those above (`hooks.start_at_layer`);
- nor the positions before the subject's last token: each step runs every row only from its subject's last token on,
  after the keys and values of the positions before it, computed once (`ModelAdapter.prefix_cache`, prefixes
  left-padded to the longest);
- a step runs only the rows of requests that have not stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import Cache, PreTrainedTokenizerBase

from flextape_bench.cases import EditRequest
from flextape_bench.editors.base import at_least_zero, positive, spec_field
from flextape_bench.editors.hooks import add_at_positions, capture, start_at_layer
from flextape_bench.editors.subject import fill, last_subject_token, pad
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.tokenization import encode_continuation
from flextape_bench.weights import working_dtype

KL_PROMPT = "{} is a"
EARLY_STOP_LOSS = 5e-2
LOGIT_BUDGET = 2**26  # LM-head logits (scored positions x vocabulary) of one sub-batch: 256 MiB in float32


def value_record() -> dict[str, float | int]:
    """The value optimisation's fixed settings, for a run's config.json: the sub-batch size changes the targets'
    last float bits, so a run records the budget that set it."""
    return {"early_stop_loss": EARLY_STOP_LOSS, "logit_budget": LOGIT_BUDGET}


@dataclass(frozen=True)
class ValueHparams:
    """Hyperparameters of the value optimisation (names as in the ROME/MEMIT papers' code)."""

    v_num_grad_steps: int = spec_field("most loss evaluations of the value optimisation", check=positive)
    v_lr: float = spec_field("Adam learning rate of the value vector", check=positive)
    v_weight_decay: float = spec_field("weight of ||delta|| / ||h0||^2 in the loss", check=at_least_zero)
    clamp_norm_factor: float = spec_field("delta is clamped to this times ||h0||", check=positive)
    kl_factor: float = spec_field("weight of the KL term that keeps the subject's essence", check=at_least_zero)


@dataclass(frozen=True)
class _RequestRows:
    """One request's token rows: each template-wrapped prompt followed by the new target, then the KL prompt."""

    ids: list[list[int]]
    subject_index: list[int]
    targets: list[tuple[int, int, int]]  # (row, position predicting it, token) of each target token


def _request_rows(tokenizer: PreTrainedTokenizerBase, request: EditRequest, templates: Sequence[str]) -> _RequestRows:
    ids: list[list[int]] = []
    subject_index: list[int] = []
    targets: list[tuple[int, int, int]] = []
    for template in templates:
        item = fill(template.replace("{}", request.prompt, 1), request.subject)
        cont = encode_continuation(tokenizer, item.text, request.target_new)
        targets += [(len(ids), len(cont.context) - 1 + i, token) for i, token in enumerate(cont.target)]
        ids.append(list(cont.context) + list(cont.target))
        subject_index.append(last_subject_token(tokenizer, item, f"{item.text} {request.target_new}"))
    item = fill(KL_PROMPT, request.subject)
    ids.append(list(tokenizer(item.text)["input_ids"]))
    subject_index.append(last_subject_token(tokenizer, item))
    return _RequestRows(ids, subject_index, targets)


@dataclass
class _Suffix:
    """The rows of the requests still optimising, each from its subject's last token on (its start), the first
    position delta can change. What comes before is the same at every step: its keys and values are computed once
    (`cache`, each row's prefix left-padded to the longest), and the site's layer receives `below`, its input at the
    suffix's positions as the first pass computed it."""

    input_ids: torch.Tensor  # (rows, width): each row from its start, right-padded
    attention_mask: torch.Tensor  # (rows, prefix + width): the left-padded prefixes, then the suffixes
    position_ids: torch.Tensor  # (rows, width): start, start + 1, ...
    below: torch.Tensor
    cache: Cache | None
    kl_rows: torch.Tensor  # the KL prompt's row of each request
    target_row: torch.Tensor  # row and position (from its start) predicting each target token, and the token
    target_pos: torch.Tensor
    labels: torch.Tensor


def _suffix(adapter: ModelAdapter, requests: Sequence[_RequestRows], live: list[int], frozen: torch.Tensor) -> _Suffix:
    """The `_Suffix` of the requests `live` (indices into `requests`, whose rows `frozen` holds in order)."""
    per, device = len(requests[0].ids), adapter.input_device
    ids = [row for i in live for row in requests[i].ids]
    starts = [index for i in live for index in requests[i].subject_index]
    prefix, width = max(starts), max(len(row) - start for row, start in zip(ids, starts))
    fill_id = adapter.tokenizer.pad_token_id or 0
    pads = [prefix - start for start in starts]
    prefix_mask = [[0] * pad + [1] * start for pad, start in zip(pads, starts)]
    targets = [
        (slot * per + row, pos - starts[slot * per + row], token)
        for slot, i in enumerate(live)
        for row, pos, token in requests[i].targets
    ]
    target_row, target_pos, labels = (torch.tensor(column, dtype=torch.long) for column in zip(*targets))
    # the first pass's input of the site's layer at each row's positions start .. start + width (padding beyond)
    columns = (torch.tensor(starts)[:, None] + torch.arange(width)).clamp(max=frozen.shape[1] - 1)
    rows = torch.tensor([i * per + k for i in live for k in range(per)])
    cache = None
    if prefix:
        cache = adapter.prefix_cache(
            input_ids=torch.tensor([[fill_id] * pad + row[:start] for pad, row, start in zip(pads, ids, starts)]),
            attention_mask=torch.tensor(prefix_mask),
            position_ids=torch.tensor([[0] * pad + list(range(start)) for pad, start in zip(pads, starts)]),
        )
    suffix_mask = [[1] * (len(row) - start) + [0] * (width - len(row) + start) for row, start in zip(ids, starts)]
    suffix_ids = [row[start:] + [fill_id] * (width - len(row) + start) for row, start in zip(ids, starts)]
    return _Suffix(
        input_ids=torch.tensor(suffix_ids, device=device),
        attention_mask=torch.tensor([p + q for p, q in zip(prefix_mask, suffix_mask)], device=device),
        position_ids=torch.tensor([list(range(start, start + width)) for start in starts], device=device),
        below=frozen[rows[:, None].to(frozen.device), columns.to(frozen.device)],
        cache=cache,
        kl_rows=torch.arange(len(live)) * per + per - 1,
        target_row=target_row,
        target_pos=target_pos,
        labels=labels,
    )


def _sub_batches(requests: Sequence[_RequestRows], vocab_size: int) -> list[range]:
    """Consecutive requests whose scored positions (target tokens and KL prompt) need at most LOGIT_BUDGET logits
    together (a request alone may need more)."""
    cap = max(1, LOGIT_BUDGET // vocab_size)
    groups, start, used = [], 0, 0
    for i, request in enumerate(requests):
        size = len(request.targets) + 1
        if i > start and used + size > cap:
            groups.append(range(start, i))
            start, used = i, 0
        used += size
    return [*groups, range(start, len(requests))]


def _layer_of(layers: str, site: str) -> int:
    """Index of the decoder layer that is, or holds, module `site`."""
    return int(site.removeprefix(f"{layers}.").split(".")[0])


def _next_token_log_probs(adapter: ModelAdapter, hidden: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(adapter.layout.head_logits(adapter.model, hidden).float(), -1)


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
    rows = [_request_rows(adapter.tokenizer, request, templates) for request in requests]
    results = [
        _optimize(adapter, [rows[i] for i in group], site, hp)
        for group in _sub_batches(rows, adapter.model.config.vocab_size)
    ]
    return torch.cat([init for init, _ in results]), torch.cat([target for _, target in results])


def _optimize(
    adapter: ModelAdapter, requests: Sequence[_RequestRows], site: str, hp: ValueHparams
) -> tuple[torch.Tensor, torch.Tensor]:
    """`optimize_values` for one sub-batch of requests."""
    module = adapter.model.get_submodule(site)
    layers = adapter.layout.layer_list(adapter.model)
    first = _layer_of(adapter.layout.layers, site)
    n, per = len(requests), len(requests[0].ids)
    n_templates = per - 1  # each request's rows: its templates, then the KL prompt
    batch = pad(
        adapter.tokenizer,
        [ids for request in requests for ids in request.ids],
        [index for request in requests for index in request.subject_index],
        adapter.input_device,
    )
    bare_rows, kl_rows = torch.arange(n) * per, torch.arange(n) * per + n_templates  # the first template is bare "{}"
    store: dict[str, torch.Tensor] = {}
    entering: dict[str, torch.Tensor] = {}
    with torch.no_grad(), capture(module, store), capture(layers[first], entering):
        hidden = adapter.body_hidden(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        output, index = store["output"], batch.subject_index.cpu()
        init = output[bare_rows.to(output.device), index[bare_rows].to(output.device)]
        init = init.to(working_dtype(init.dtype))
        at = (kl_rows.to(hidden.device), index[kl_rows].to(hidden.device))
        kl_ref = _next_token_log_probs(adapter, hidden[at]).cpu()
    frozen = entering["input"]
    delta = torch.zeros_like(init, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=hp.v_lr)
    max_norm = hp.clamp_norm_factor * init.norm(dim=-1)
    active = torch.ones(n, dtype=torch.bool)
    suffix: _Suffix | None = None
    for step in range(hp.v_num_grad_steps):
        live = active.nonzero()[:, 0]
        if suffix is None or len(suffix.kl_rows) != len(live):  # only the rows of requests still optimising
            suffix = _suffix(adapter, requests, live.tolist(), frozen)
        vectors = delta[live]
        # delta goes in at each row's first suffix position: its subject's last token
        rows, first_position = torch.arange(len(live) * per), torch.zeros(len(live) * per, dtype=torch.long)
        adding = add_at_positions(module, rows, first_position, vectors.repeat_interleave(per, 0))
        with start_at_layer(layers, first, suffix.below), adding:
            hidden = adapter.body_hidden_after(
                suffix.cache,
                input_ids=suffix.input_ids,
                attention_mask=suffix.attention_mask,
                position_ids=suffix.position_ids,
            )
        at = (suffix.target_row.to(hidden.device), suffix.target_pos.to(hidden.device))
        token_nll = adapter.token_nll(hidden[at], suffix.labels).cpu()
        # mean NLL of each row's target tokens, then the mean over a request's template rows
        tokens = torch.bincount(suffix.target_row, minlength=len(rows)).clamp(min=1)
        row_nll = torch.zeros(len(rows)).index_add(0, suffix.target_row, token_nll) / tokens
        nll = row_nll.view(len(live), per).sum(-1) / n_templates
        current = _next_token_log_probs(adapter, hidden[suffix.kl_rows.to(hidden.device), 0]).cpu()
        loss = value_loss(nll, kl_ref[live], current, vectors.cpu(), init[live].cpu(), hp)
        # a request stops once its loss is below the threshold; nobody steps after the last evaluation
        going = loss.detach() >= EARLY_STOP_LOSS
        active[live[~going]] = False
        if step == hp.v_num_grad_steps - 1 or not active.any():
            break
        previous = delta.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        loss[going].sum().backward()
        optimizer.step()
        with torch.no_grad():
            delta[~active] = previous[~active]
            # project back into the ball ||delta|| <= clamp_norm_factor * ||h0||
            norms = delta.norm(dim=-1)
            scale = torch.where(norms > max_norm, max_norm / norms.clamp(min=1e-12), torch.ones_like(norms))
            delta.mul_(scale[:, None])
    return init, (init + delta).detach()
