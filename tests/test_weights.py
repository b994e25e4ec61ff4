import pytest
import torch
from accelerate import cpu_offload

from flextape_bench.weights import applied_delta, read_tensor


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


def _offloaded_linear() -> torch.nn.Module:
    """A linear layer whose weights accelerate keeps in CPU memory and loads before each forward (its module holds
    meta tensors)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    cpu_offload(model, execution_device="cpu")
    assert model[0].weight.device.type == "meta"
    return model


def test_offloaded_weight_is_edited_where_forward_reads_it_then_restored():
    model = _offloaded_linear()
    x = torch.randn(3, 8)
    weight, bias = read_tensor(model, "0.weight").clone(), read_tensor(model, "0.bias")
    first, second = torch.randn(8, 8) * 1e-2, torch.randn(8, 8) * 1e-2
    with applied_delta(model, {"0.weight": first}):
        assert torch.equal(model(x), torch.nn.functional.linear(x, weight + first, bias))
        with applied_delta(model, {"0.weight": second}):  # nested: on top of the first
            assert torch.equal(read_tensor(model, "0.weight"), weight + first + second)
        assert torch.equal(read_tensor(model, "0.weight"), weight + first)
    assert torch.equal(read_tensor(model, "0.weight"), weight)
    assert torch.equal(model(x), torch.nn.functional.linear(x, weight, bias))


def test_offloaded_weight_restored_even_when_the_block_fails():
    model = _offloaded_linear()
    weight = read_tensor(model, "0.weight").clone()
    with pytest.raises(RuntimeError, match="boom"), applied_delta(model, {"0.weight": torch.ones(8, 8)}):
        raise RuntimeError("boom")
    assert torch.equal(read_tensor(model, "0.weight"), weight)


def test_a_meta_weight_nothing_loads_is_an_error():
    model = torch.nn.Linear(4, 4, device="meta")
    with pytest.raises(RuntimeError, match="weight is on the meta device and no accelerate offload hook loads it"):
        read_tensor(model, "weight")


def test_unrepresented_share_counts_changes_that_round_back_to_the_weight():
    from flextape_bench.weights import unrepresented_share

    # bfloat16 spacing at 1.0 is 2^-7: 1 + 1e-4 rounds back to 1, 1 + 0.01 moves to 1.0078125
    model = torch.nn.Linear(2, 1, bias=False).to(torch.bfloat16)
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert unrepresented_share(model, {"weight": torch.tensor([[1e-4, 0.01]])}) == 0.5
    assert unrepresented_share(model.float(), {"weight": torch.tensor([[1e-4, 0.01]])}) == 0.0


def test_weights_is_core_and_imports_no_other_module_of_the_package():
    """weights.py (WeightDelta, applied_delta) sits below editors and models: importing any of them would close a
    cycle such as editors/base -> models/adapter -> weights -> editors/base."""
    import ast
    from pathlib import Path

    import flextape_bench.weights as weights

    tree = ast.parse(Path(weights.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [name for name in imported if name.split(".")[0] == "flextape_bench"]
