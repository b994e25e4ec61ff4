"""What the tests of models split over devices check (tests/test_offload.py on the CPU, tests/test_multi_gpu.py on
GPUs): an editor computes the same delta on the split model as on the same weights on one device, the delta takes
effect where forward passes read the weights (offloaded ones too), and afterwards every weight is bit-identical."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from flextape_bench.cases import EditRequest, ScoreRequest
from flextape_bench.editors import EDITORS, EditorContext, load_hparams
from flextape_bench.editors.mend import MENDHparams, MENDNetwork, edited_modules, save_checkpoint
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.scoring import Scorer
from flextape_bench.weights import applied_delta, read_tensor

REQUESTS = [
    EditRequest("{} was born in", "Marie Waldron", "New York City", "Clunie"),
    EditRequest("The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
]
SCORED = [ScoreRequest(r.prompt.replace("{}", r.subject), (r.target_new, r.target_true)) for r in REQUESTS]
_STATISTICS = dict(
    v_num_grad_steps=15,
    context_template_length_params=[[4, 5]],
    mom2_dataset="model",
    mom2_n_samples=16,
    mom2_max_tokens=12,
)
HPARAMS = {  # layer 1 is offloaded in every split of the tests; MEMIT also edits layer 0, which is not
    "ft": dict(layers=[1], lr=1e-2, num_steps=5, norm_constraint=1e-2),
    "rome": dict(_STATISTICS, layer=1),
    # the bare prompt only: its keys are the ones solved for, so that the edit moves a tiny random model
    "memit": dict(_STATISTICS, layers=[0, 1], mom2_update_weight=1e-3, context_template_length_params=[]),
    "mend": dict(layers=[1], rank=4, edit_lr=1e-2),
}
# a tiny Llama's decoder layers 0-2 between embeddings, final norm and head
LLAMA_MODULES = [
    "model.embed_tokens",
    "model.layers.0",
    "model.layers.1",
    "model.layers.2",
    "model.norm",
    "model.rotary_emb",
    "lm_head",
]


def save(adapter: ModelAdapter, folder: Path) -> Path:
    """The adapter's model and tokenizer as a local model directory (safetensors)."""
    adapter.model.save_pretrained(folder)
    adapter.tokenizer.save_pretrained(folder)
    return folder


def load_split(
    folder: Path, adapter: ModelAdapter, device_map: dict[str, str | int], offload_folder: Path | None = None
) -> ModelAdapter:
    """The model saved in `folder` loaded with `device_map` (accelerate), as an adapter like `adapter`."""
    model = (
        AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32, device_map=device_map, offload_folder=offload_folder
        )
        .eval()
        .requires_grad_(False)
    )
    return ModelAdapter(
        name=f"{adapter.name}-split",
        location=str(folder),
        model=model,
        tokenizer=adapter.tokenizer,
        layout=adapter.layout,
    )


def snapshot(adapter: ModelAdapter) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer as forward passes read it (offloaded ones from their storage)."""
    return {name: read_tensor(adapter.model, name).clone() for name in adapter.model.state_dict()}


def _untrained_mend(adapter: ModelAdapter, path: Path) -> Path:
    """A MEND checkpoint for the adapter's weights with an untrained network (the identity: the edit is one step
    along the edit loss's gradient)."""
    hparams = load_hparams("mend", MENDHparams, adapter.layout.family, HPARAMS["mend"])
    network = MENDNetwork(edited_modules(adapter, hparams.layers), hparams.rank, hparams.edit_lr)
    save_checkpoint(path, network, hparams, adapter.weights_fingerprint(), adapter.name, [], {})
    return path


def _delta(adapter: ModelAdapter, editor: str, overrides: dict, cache: Path) -> dict[str, torch.Tensor]:
    cls = EDITORS.get(editor)
    hparams = load_hparams(editor, cls.hparams_class, adapter.layout.family, overrides)
    context = EditorContext(seed=0, cache=cache, weights=adapter.weights_fingerprint())
    return cls(adapter, hparams, context).compute_delta(REQUESTS)


def _p(adapter: ModelAdapter) -> torch.Tensor:
    """(request, target) probabilities of the new and true targets."""
    return torch.tensor([[score.p for score in scores] for scores in Scorer(adapter).score(SCORED)])


def check_edit(reference: ModelAdapter, split: ModelAdapter, editor: str, cache: Path) -> None:
    """`editor` on `split` matches it on `reference` (the same weights on one device) and leaves no trace."""
    fingerprint = split.weights_fingerprint()
    assert fingerprint == reference.weights_fingerprint()  # the same weights, wherever they live
    before = snapshot(split)
    overrides = HPARAMS[editor]
    if editor == "mend":  # both apply one untrained network, saved for these weights
        overrides = {**overrides, "checkpoint": str(_untrained_mend(reference, cache / "mend.pt"))}
    # separate statistics caches, so that the split model computes its own key statistics
    wanted = _delta(reference, editor, overrides, cache / "reference")
    delta = _delta(split, editor, overrides, cache / "split")
    assert delta and set(delta) == set(wanted)
    for name, change in delta.items():
        expected = wanted[name].to(change.device)
        assert change.abs().max() > 0
        assert torch.allclose(change, expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item()), name
    pre, ref_pre = _p(split), _p(reference)
    with applied_delta(reference.model, wanted):
        ref_post = _p(reference)
    with applied_delta(split.model, delta):
        for name, change in delta.items():  # the edited weight is what forward passes read ...
            now = read_tensor(split.model, name)
            assert torch.equal(now, before[name].to(now.device) + change.to(now.device, now.dtype)), name
        post = _p(split)  # ... and they do: the split model scores like the edited reference
    assert torch.allclose(pre, ref_pre, rtol=1e-4, atol=1e-6)
    assert torch.allclose(post, ref_post, rtol=1e-3, atol=1e-5)
    assert (post[:, 0] > pre[:, 0]).all(), (pre, post)  # p(new target) rose
    after = snapshot(split)
    assert all(torch.equal(before[name], after[name]) for name in before)  # restored bit-exactly, offloaded too
    assert split.weights_fingerprint() == fingerprint
