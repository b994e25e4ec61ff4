import pytest
import torch

from flextape_bench.errors import UserError
from flextape_bench.models import MODELS, load
from flextape_bench.models.layout import layout_for


def test_layout_paths_exist_and_head_matches_the_model(tiny):
    layout, model = tiny.layout, tiny.model
    n = layout.num_layers(model)
    assert n == 3
    for path in (layout.body, layout.final_norm, layout.lm_head, layout.embed):
        model.get_submodule(path)
    for layer in range(n):
        model.get_submodule(layout.layer_path(layout.mlp, layer))
        model.get_submodule(layout.layer_path(layout.mlp_in, layer))
        model.get_parameter(layout.mlp_out_weight(layer))
    ids = torch.tensor([[5, 6, 7, 8]])
    hidden = tiny.body_hidden(input_ids=ids)
    assert torch.allclose(layout.head_logits(model, hidden), model(input_ids=ids).logits, atol=1e-5)


def test_gemma_layout_on_real_weights(gemma):
    assert gemma.layout.family == "gemma3" and gemma.layout.num_layers(gemma.model) == 18
    assert gemma.model.get_parameter(gemma.layout.mlp_out_weight(8)).shape == (640, 2048)


def test_unknown_architecture_is_a_user_error():
    with pytest.raises(UserError, match="architecture 'bert' has no module layout"):
        layout_for("bert")


def test_paper_aliases_map_to_hub_ids():
    assert MODELS.get("llamac")() == "meta-llama/Llama-2-7b-chat-hf"
    assert MODELS.get("mistralb")() == "mistralai/Mistral-7B-v0.1"


def test_unreachable_hub_id_is_one_clear_line():
    with pytest.raises(UserError) as info:
        load("nobody-here/not-a-model")
    message = str(info.value)
    assert "nobody-here/not-a-model" in message and "\n" not in message
