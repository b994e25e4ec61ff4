import torch

from flextape_bench.weights import applied_delta


def test_delta_is_applied_then_restored_bit_exactly():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 8)
    original = model.weight.detach().clone()
    delta = {"weight": torch.randn(8, 8) * 1e-3}
    with applied_delta(model, delta):
        assert torch.allclose(model.weight, original + delta["weight"])
    assert torch.equal(model.weight, original)


def test_restored_even_when_the_block_fails():
    model = torch.nn.Linear(4, 4)
    original = model.weight.detach().clone()
    try:
        with applied_delta(model, {"weight": torch.ones(4, 4)}):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.equal(model.weight, original)
