"""FT-L on the real embedded model and on every tiny architecture: declared parameters only, model left untouched."""

from pathlib import Path

import pytest
import torch

from flextape_bench.cases import EditRequest, ScoreRequest
from flextape_bench.editors import EDITORS, EditorContext, load_hparams
from flextape_bench.editors.ft import FTEditor, FTHparams
from flextape_bench.editors.nll import target_nll
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
    hparams = load_hparams(
        "ft", FTHparams, "gemma3", {"num_steps": 10, "lr": 5e-3, "norm_constraint": 5e-3, "layers": [8]}
    )
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


def test_ft_trains_the_mlp_output_projection_and_its_bias_of_every_architecture(tiny):
    # the reference trains every parameter whose name contains the module's path: weight and, where it has one, bias
    editor = FTEditor(tiny, FTHparams(layers=[1], lr=1e-2, num_steps=2, norm_constraint=1e-2), CONTEXT)
    before = _state(tiny)
    delta = editor.compute_delta(REQUESTS)
    module = {"gpt2": "transformer.h.1.mlp.c_proj", "gptj": "transformer.h.1.mlp.fc_out"}.get(
        tiny.layout.family, "model.layers.1.mlp.down_proj"
    )
    leaves = ["weight", "bias"] if tiny.layout.family in ("gpt2", "gptj") else ["weight"]
    assert set(delta) == set(editor.declared_parameters()) == {f"{module}.{leaf}" for leaf in leaves}
    assert all(d.abs().max() > 0 and d.abs().max() <= 1e-2 + 1e-7 for d in delta.values())
    after = tiny.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in tiny.model.parameters())


def test_registry_has_ft_with_alias():
    assert EDITORS.get("ft-l") is FTEditor


@pytest.mark.parametrize("family", ["gptj", "llama", "mistral", "gemma3", "gpt2", "smollm2"])
def test_hparams_ship_for_every_family(family):
    hparams = load_hparams("ft", FTHparams, family, {})
    assert hparams.num_steps > 0 and hparams.layers


def test_prompt_end_loss_reads_every_target_token_at_the_prompts_last_position(tiny_llama):
    # ft_main.py: log_softmax(logits at the last prompt token), gathered at each target token id, averaged
    prompt, target = "Danielle Darrieux speaks", "New York City"
    tok = tiny_llama.tokenizer
    prompt_ids, full_ids = tok(prompt)["input_ids"], tok(prompt + " " + target)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids
    with torch.no_grad():
        logits = tiny_llama.model(input_ids=torch.tensor([prompt_ids])).logits[0, -1].double()
    expected = -torch.log_softmax(logits, -1)[full_ids[len(prompt_ids) :]].mean()
    with torch.no_grad():
        got = target_nll(tiny_llama, [prompt], [target], at_prompt_end=True)[0]
        teacher_forced = target_nll(tiny_llama, [prompt], [target])[0]
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(teacher_forced.item() - expected.item()) > 1e-3  # the other loss differs on a multi-token target


def test_ft_on_bfloat16_weights_keeps_its_float32_change_and_the_bound(tiny_llama):
    import copy

    from flextape_bench.models.adapter import ModelAdapter

    half = ModelAdapter(
        name="tiny-bf16",
        location="",
        model=copy.deepcopy(tiny_llama.model).bfloat16(),
        tokenizer=tiny_llama.tokenizer,
        layout=tiny_llama.layout,
    )
    eps = 5e-5
    delta = FTEditor(half, FTHparams(layers=[0], lr=5e-4, num_steps=3, norm_constraint=eps), CONTEXT).compute_delta(
        REQUESTS
    )
    ((name, change),) = delta.items()
    assert change.dtype == torch.float32
    # (w0 + eps) - w0 in float32 is eps up to one rounding at |w0|'s scale
    assert (
        change.abs().max() <= eps + torch.finfo(torch.float32).eps * half.model.get_parameter(name).abs().max().float()
    )
    # a bfloat16 clone clamped around a bfloat16 original could only hold multiples of the weight's spacing (far
    # above 5e-5 for weights near 0.2): the float32 change holds values in between
    assert (change.abs() > 0).float().mean() > 0.5


def test_ft_rejects_an_unknown_loss():
    from flextape_bench.errors import UserError

    with pytest.raises(UserError, match="loss: the string 'nll' is not one of prompt_end, teacher_forced"):
        load_hparams("ft", FTHparams, "gemma3", {"loss": "nll"})
