"""The value optimisation's loss and step rule against hand computations (the reference's compute_v / compute_z)."""

import math

import pytest
import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.value import ValueHparams, optimize_values, value_loss

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
