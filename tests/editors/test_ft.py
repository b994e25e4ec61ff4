"""FT-L on the real embedded model and on every tiny architecture: declared parameters only, model left untouched."""
from pathlib import Path

import pytest
import torch

from flextape_bench.cases import EditRequest, ScoreRequest
from flextape_bench.editors import EDITORS, EditorContext, load_hparams
from flextape_bench.editors.ft import FTEditor, FTHparams
from flextape_bench.scoring import Scorer
from flextape_bench.weights import applied_delta

CONTEXT = EditorContext(seed=0, cache=Path("unused"), weights="unused")
REQUESTS = [
    EditRequest("{} was born in", "John James Rickard Macleod", "New York City", "Clunie"),
    EditRequest("The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
]


def _state(adapter):
    return {k: v.clone() for k, v in adapter.model.state_dict().items()}


def test_ft_edits_gemma_and_leaves_the_model_untouched(gemma):
    hparams = load_hparams("ft", FTHparams, "gemma3", {"num_steps": 10, "lr": 5e-3, "norm_constraint": 5e-3})
    editor = FTEditor(gemma, hparams, CONTEXT)
    before = gemma.weights_fingerprint()
    delta = editor.compute_delta(REQUESTS)
    assert gemma.weights_fingerprint() == before
    assert set(delta) == set(editor.declared_parameters()) == {"model.layers.8.mlp.down_proj.weight"}
    assert delta["model.layers.8.mlp.down_proj.weight"].abs().max() <= 5e-3 + 1e-7  # the L-inf constraint
    requests = [ScoreRequest(r.prompt.replace("{}", r.subject), (r.target_new, r.target_true)) for r in REQUESTS]
    scorer = Scorer(gemma)
    pre = scorer.score(requests)
    with applied_delta(gemma.model, delta):
        post = scorer.score(requests)
    assert gemma.weights_fingerprint() == before  # restored bit-exactly
    for (pre_new, _), (post_new, _) in zip(pre, post):
        assert post_new.p > pre_new.p
    assert all(new.p > true.p for new, true in post)


def test_ft_declares_the_mlp_output_projection_of_every_architecture(tiny):
    editor = FTEditor(tiny, FTHparams(layers=[1], lr=1e-2, num_steps=2, norm_constraint=1e-2), CONTEXT)
    before = _state(tiny)
    delta = editor.compute_delta(REQUESTS)
    (name,) = editor.declared_parameters()
    assert set(delta) == {name} and delta[name].abs().max() > 0
    assert name.endswith({"gpt2": "mlp.c_proj.weight", "gptj": "mlp.fc_out.weight"}.get(tiny.layout.family, "mlp.down_proj.weight"))
    after = tiny.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in tiny.model.parameters())


def test_registry_has_ft_with_alias():
    assert EDITORS.get("ft-l") is FTEditor


@pytest.mark.parametrize("family", ["gptj", "llama", "mistral", "gemma3", "gpt2"])
def test_hparams_ship_for_every_family(family):
    hparams = load_hparams("ft", FTHparams, family, {})
    assert hparams.num_steps > 0 and hparams.layers
