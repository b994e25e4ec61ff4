"""The value optimisation's loss and step rule against hand computations (the reference's compute_v / compute_z)."""

import math

import pytest
import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors import value
from flextape_bench.editors.subject import fill, last_subject_token
from flextape_bench.editors.value import ValueHparams, optimize_values, value_loss
from flextape_bench.tokenization import encode_continuation

HP = ValueHparams(v_num_grad_steps=20, v_lr=0.5, v_weight_decay=0.5, clamp_norm_factor=4.0, kl_factor=0.0625)
REQUEST = EditRequest("{} was born in", "Marie Waldron", "New York City", "Clunie")


def test_loss_is_nll_plus_kl_current_from_initial_plus_decay_on_the_norm():
    p_init, p_now = [0.5, 0.5], [0.8, 0.2]
    delta, init = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 2.0]])
    loss = value_loss(torch.tensor([0.3]), torch.tensor([p_init]).log(), torch.tensor([p_now]).log(), delta, init, HP)
    # KL(p_now || p_init), the direction of kl_div(init_logprobs, current_logprobs, log_target=True)
    kl = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)  # 0.192745
    decay = 0.5 * 5.0 / 2.0**2  # v_weight_decay * ||delta|| / ||h0||^2 = 0.625
    assert loss.item() == pytest.approx(0.3 + 0.0625 * kl + decay, rel=1e-6)
    assert loss.item() == pytest.approx(0.9370466, rel=1e-6)


def _offset(adapter, steps: int, lr: float) -> torch.Tensor:
    hp = ValueHparams(v_num_grad_steps=steps, v_lr=lr, v_weight_decay=0.0, clamp_norm_factor=1e6, kl_factor=0.0)
    init, target = optimize_values(adapter, [REQUEST], f"{adapter.layout.layers}.1", ["{}"], hp)
    return target - init


def test_the_last_evaluation_takes_no_step(tiny_llama):
    # the reference evaluates the loss v_num_grad_steps times and steps after all but the last
    assert torch.equal(_offset(tiny_llama, 1, 0.01), torch.zeros(1, tiny_llama.model.config.hidden_size))


def test_two_evaluations_take_exactly_one_adam_step(tiny_llama):
    # Adam's first step moves each coordinate by lr * g / (|g| + eps): by lr wherever the gradient is not tiny
    moved = _offset(tiny_llama, 2, 0.01).abs()[0]
    assert moved.max().item() == pytest.approx(0.01, abs=1e-6)  # target - init: float32 rounding at |h0|
    assert (moved > 0.0099).float().mean() > 0.9


def _reference_values(adapter, request, site, templates, hp, stop):
    """compute_z for one request from its equations: each text alone through the whole model at every step, the loss
    written out (mean target NLL over templates + kl_factor KL(p_now || p_init) + decay * ||delta|| / ||h0||^2), Adam,
    stop below `stop`, clamp to the ball; returns (h0, h0 + delta, loss evaluations, scored positions)."""
    model, tok = adapter.model, adapter.tokenizer
    module = model.get_submodule(site)

    def encoded(template_text, target):
        item = fill(template_text, request.subject)
        if target is None:
            return tok(item.text, return_tensors="pt")["input_ids"], last_subject_token(tok, item), None
        cont = encode_continuation(tok, item.text, target)
        subject = last_subject_token(tok, item, f"{item.text} {target}")
        return torch.tensor([list(cont.context) + list(cont.target)]), subject, (len(cont.context), cont.target)

    rows = [encoded(t.replace("{}", request.prompt, 1), request.target_new) for t in templates]
    kl_row = encoded("{} is a", None)

    def run(ids, subject, delta):
        out = {}

        def hook(_m, _i, output):
            hidden = output[0] if isinstance(output, tuple) else output
            out["h"] = hidden[0, subject].detach().clone()
            if delta is None:
                return None
            hidden = hidden.clone()
            hidden[0, subject] = hidden[0, subject] + delta
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        handle = module.register_forward_hook(hook)
        try:
            logits = model(input_ids=ids).logits[0].float()
        finally:
            handle.remove()
        return torch.log_softmax(logits, -1), out["h"]

    with torch.no_grad():
        _, h0 = run(rows[0][0], rows[0][1], None)
        kl_init = run(kl_row[0], kl_row[1], None)[0][kl_row[1]]
    delta = torch.zeros_like(h0, requires_grad=True)
    adam = torch.optim.Adam([delta], lr=hp.v_lr)
    for step in range(hp.v_num_grad_steps):
        nll = 0
        for ids, subject, (start, target) in rows:
            logp = run(ids, subject, delta)[0]
            nll = nll + torch.stack([-logp[start - 1 + i, t] for i, t in enumerate(target)]).mean() / len(rows)
        kl_now = run(kl_row[0], kl_row[1], delta)[0][kl_row[1]]
        kl = (kl_now.exp() * (kl_now - kl_init)).sum()
        loss = nll + hp.kl_factor * kl + hp.v_weight_decay * delta.norm() / h0.norm() ** 2
        if loss.item() < stop or step == hp.v_num_grad_steps - 1:
            break
        adam.zero_grad()
        loss.backward()
        adam.step()
        with torch.no_grad():
            radius = hp.clamp_norm_factor * h0.norm()
            if delta.norm() > radius:
                delta.mul_(radius / delta.norm())
    return h0, (h0 + delta).detach(), step + 1, sum(len(target) for *_, (_, target) in rows) + 1


REQUESTS = [
    REQUEST,
    EditRequest("The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
    EditRequest("{} works in the field of", "Ferdinand Tönnies", "physics", "sociology"),
    EditRequest("{} is a citizen of", "Aldo Moro", "Japan", "Italy"),
]


def test_sub_batches_and_stopped_requests_give_what_one_request_at_a_time_gives(tiny_llama, monkeypatch):
    hp = ValueHparams(v_num_grad_steps=12, v_lr=1.0, v_weight_decay=0.01, clamp_norm_factor=20.0, kl_factor=0.0625)
    site, templates = f"{tiny_llama.layout.layers}.1.mlp.down_proj", ["{}", "Yesterday. {}", "A b c. {}"]
    # a random model's target NLL stays near log(vocabulary): a higher threshold makes requests stop at different steps
    stop = 8.5
    monkeypatch.setattr(value, "EARLY_STOP_LOSS", stop)
    expected = [_reference_values(tiny_llama, request, site, templates, hp, stop) for request in REQUESTS]
    evaluations = [e for _, _, e, _ in expected]
    assert min(evaluations) < hp.v_num_grad_steps == max(evaluations)  # some stop early, some run to the end
    layers = tiny_llama.model.get_submodule(tiny_llama.layout.layers)
    below, at_site, sizes = [], [], []  # (grad enabled, rows, positions) of each call; requests per sub-batch

    def record(calls):
        return lambda _m, args, _o: calls.append((torch.is_grad_enabled(), *args[0].shape[:2]))

    hooks = [layers[0].register_forward_hook(record(below)), layers[1].register_forward_hook(record(at_site))]
    optimize = value._optimize
    monkeypatch.setattr(
        value, "_optimize", lambda _a, requests, *rest: sizes.append(len(requests)) or optimize(_a, requests, *rest)
    )
    most = max(positions for *_, positions in expected)  # sub-batches of two or three requests
    monkeypatch.setattr(value, "LOGIT_BUDGET", tiny_llama.model.config.vocab_size * 2 * most)
    try:
        init, target = optimize_values(tiny_llama, REQUESTS, site, templates, hp)
    finally:
        for hook in hooks:
            hook.remove()
    h0 = torch.stack([e[0] for e in expected])
    z = torch.stack([e[1] for e in expected])
    assert torch.allclose(init, h0, rtol=0, atol=1e-5 * h0.abs().max().item())
    assert torch.allclose(target, z, rtol=0, atol=1e-4 * z.abs().max().item())
    assert len(sizes) >= 2 and max(sizes) >= 2 and sum(sizes) == len(REQUESTS)
    # the optimisation steps never run the layer below the site (only the no-gradient first passes do)
    assert not any(grad for grad, *_ in below)
    # each step ran the site's layer once, on the rows of the requests of the sub-batch still optimising, and each row
    # only from its subject's last token on: fewer positions than the whole rows
    per, longest = len(templates) + 1, max(length for grad, _, length in at_site if not grad)
    wanted, start = [], 0
    for size in sizes:
        group = evaluations[start : start + size]
        wanted += [per * sum(e > step for e in group) for step in range(max(group))]
        start += size
    assert [rows for grad, rows, _ in at_site if grad] == wanted
    assert all(length < longest for grad, _, length in at_site if grad)
