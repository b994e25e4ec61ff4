"""MEMIT's mapping of a residual target through Gemma 3's post-MLP norm."""

import torch

from flextape_bench.editors.memit import through_norm


def test_through_norm_reaches_small_targets_exactly_and_large_ones_closer(gemma):
    norm = gemma.model.get_submodule(gemma.layout.layer_path(gemma.layout.post_mlp_norm, 3))
    torch.manual_seed(0)
    outputs = torch.randn(2, gemma.model.config.hidden_size) * 3
    assert through_norm(norm, outputs, torch.zeros_like(outputs)).abs().max() < 1e-2
    for scale, tolerance in [(0.01, 0.1), (0.1, 0.1), (1.0, 0.5)]:
        resid = torch.randn_like(outputs) * scale
        change = through_norm(norm, outputs, resid).float()
        missed = (norm(outputs + change) - norm(outputs) - resid).norm(dim=-1)
        assert (missed < tolerance * resid.norm(dim=-1)).all(), (scale, missed)
