"""MEND: the gradient factors are the true gradient, the network starts as the identity, training lowers the edit
loss, and the editor applies a checkpoint to the declared parameters only and refuses the wrong one."""

import pytest
import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors import EditorContext, load_hparams
from flextape_bench.editors.mend import (
    MENDEditor,
    MENDHparams,
    MENDNetwork,
    RunningNorm,
    edited_modules,
    gradient_factors,
    load_checkpoint,
    request_key,
    save_checkpoint,
)
from flextape_bench.editors.mend_train import TrainingSplit, split_requests, train_mend
from flextape_bench.editors.nll import batch_nll, teacher_forced
from flextape_bench.errors import UserError
from flextape_bench.runner import RunOptions, prepare_tasks

REQUESTS = [
    EditRequest("{} was born in", "Marie Waldron", "New York City", "Clunie", case_id=1),
    EditRequest("The mother tongue of {} is", "Danielle Darrieux", "English", "French", case_id=2),
]
TINY = dict(
    layers=[1, 2],
    rank=8,
    steps=60,
    lr=1e-3,
    edit_lr=1e-2,
    lr_lr=1e-2,
    train_batch_size=8,
    c_edit=1.0,
    loc_batch_size=2,
    loc_n_samples=8,
    loc_max_tokens=8,
    context_template_count=2,
    context_template_length=4,
    val_size=4,
    loc_corpus="model",
)


def _batch(adapter):
    return teacher_forced(
        adapter, [r.prompt.replace("{}", r.subject) for r in REQUESTS], [r.target_new for r in REQUESTS]
    )


def test_gradient_factors_give_the_true_weight_gradient(tiny):
    """sum_t delta_t u_t^T over the kept positions equals autograd's gradient of the summed target NLL."""
    modules = edited_modules(tiny, [0, 2])
    batch = _batch(tiny)
    factors = gradient_factors(tiny, modules, batch)
    weights = [tiny.model.get_parameter(m.weight) for m in modules]
    for w in weights:
        w.requires_grad_(True)
    try:
        grads = torch.autograd.grad(batch_nll(tiny, batch).sum(), weights)
    finally:
        for w in weights:
            w.requires_grad_(False)
    for m, grad in zip(modules, grads):
        u, delta = factors[m.weight]
        outer = delta.T @ u  # (out, in)
        expected = grad.T if tiny.layout.conv1d else grad
        torch.testing.assert_close(outer, expected, rtol=1e-4, atol=1e-5)


def test_network_starts_as_the_identity_on_normalised_factors(tiny):
    modules = edited_modules(tiny, [1])
    network = MENDNetwork(modules, rank=4, edit_lr=0.5).eval()  # no statistics yet: normalisation is the identity
    factors = gradient_factors(tiny, modules, _batch(tiny))
    updates = network.updates(factors)
    for m in modules:
        u, delta = factors[m.weight]
        torch.testing.assert_close(updates[m.weight], -0.5 * delta.T @ u)
    assert len(network.transforms) == 2  # the input and output projections have different shapes


def test_running_norm_matches_the_statistics_of_all_rows():
    torch.manual_seed(0)
    rows = torch.randn(50, 6) * torch.arange(1, 7) + 3
    norm = RunningNorm(6)
    for chunk in torch.split(rows, [7, 20, 23]):
        norm.update(chunk)
    torch.testing.assert_close(norm.mean.float(), rows.mean(0))
    torch.testing.assert_close((norm.m2 / (norm.count - 1)).float(), rows.var(0), rtol=1e-5, atol=1e-5)
    normalised = norm(rows)
    torch.testing.assert_close(normalised.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalised.std(0), torch.ones(6), atol=1e-4, rtol=0)


def test_a_damaged_checkpoint_is_refused_with_what_to_do(tiny_llama, tmp_path):
    from flextape_bench.checksums import sums_file

    path, weights = tmp_path / "mend.pt", "w" * 64
    hparams = load_hparams("mend", MENDHparams, "llama", TINY)
    network = MENDNetwork(edited_modules(tiny_llama, [1]), rank=hparams.rank, edit_lr=hparams.edit_lr)
    save_checkpoint(path, network, hparams, weights, "tiny", [], {"steps": 0})
    assert load_checkpoint(path, weights)[1]["record"] == {"steps": 0}
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(
        UserError,
        match=f"^MEND checkpoint {path}: missing, or the content does not match its sha256 "
        "in mend.pt.sha256; retrain it with `flextape-bench train-mend`",
    ):
        load_checkpoint(path, weights)
    sums_file(path).unlink()
    with pytest.raises(UserError, match=f"mend.pt.sha256: missing.*sha256sum {path} > {sums_file(path)}"):
        load_checkpoint(path, weights)


@pytest.fixture(scope="module")
def p103_cases(data_dir):
    (task,) = prepare_tasks(RunOptions(tasks=["seesaw_cf_P103_eff"], data_dir=data_dir, limit=140))
    return {task.spec.task: task.cases}


def test_split_holds_out_the_first_cases_and_their_subjects(p103_cases):
    split = split_requests(p103_cases, holdout=100, val_size=4, seed=0)
    cases = p103_cases["seesaw_cf_P103_eff"]
    held = {c.rewrite.subject for c in cases[:100]}
    used = split.train + split.val
    assert len(split.val) == 4 and len(used) + split.excluded == len(cases) - 100
    assert not held & {r.subject for r in used}
    assert {r.case_id for r in used} <= {c.case_id for c in cases[100:]}
    with pytest.raises(UserError, match="--holdout"):
        split_requests(p103_cases, holdout=139, val_size=4, seed=0)


def test_training_lowers_the_edit_loss_and_the_editor_applies_the_checkpoint(llama_tiny, p103_cases, tmp_path):
    adapter = llama_tiny
    hparams = load_hparams("mend", MENDHparams, "llama", TINY)
    full = split_requests(p103_cases, holdout=100, val_size=4, seed=0)
    split = TrainingSplit(full.train[:8], full.val, full.excluded)  # one fixed batch: losses comparable across steps
    weights = adapter.weights_fingerprint()
    path = tmp_path / "mend.pt"
    record = train_mend(adapter, hparams, split, weights, tmp_path, seed=0, path=path, log_every=10)
    losses = [h["l_edit"] for h in record["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert adapter.weights_fingerprint() == weights  # training never changes the model
    again = tmp_path / "again.pt"
    train_mend(adapter, hparams, split, weights, tmp_path, seed=0, path=again, log_every=10)
    assert again.read_bytes() == path.read_bytes()  # no times in the file: a retrained checkpoint is the same file

    context = EditorContext(seed=0, cache=tmp_path, weights=weights)
    editor = MENDEditor(adapter, load_hparams("mend", MENDHparams, "llama", {**TINY, "checkpoint": str(path)}), context)
    delta = editor.compute_delta(REQUESTS)
    assert adapter.weights_fingerprint() == weights
    assert set(delta) == set(editor.declared_parameters()) == {m.weight for m in edited_modules(adapter, [1, 2])}
    assert all(d.abs().sum() > 0 for d in delta.values())
    assert editor.run_record()["training"]["steps"] == TINY["steps"]

    with pytest.raises(UserError, match="trained on the edits of case"):
        editor.compute_delta(split.train[:1])
    with pytest.raises(UserError, match="trained for other weights"):
        load_checkpoint(path, "0" * 64)
    with pytest.raises(UserError, match="train-mend"):
        load_checkpoint(tmp_path / "absent.pt", weights)
    assert request_key(split.train[0]) in editor.trained


@pytest.fixture(scope="module")
def llama_tiny(llama_tokenizer):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from flextape_bench.models.adapter import ModelAdapter
    from flextape_bench.models.layout import layout_for

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_key_value_heads=2,
        vocab_size=len(llama_tokenizer),
        num_hidden_layers=3,
        num_attention_heads=4,
        initializer_range=0.2,
    )
    model = AutoModelForCausalLM.from_config(config).eval().requires_grad_(False)
    return ModelAdapter(
        name="tiny-llama", location="", model=model, tokenizer=llama_tokenizer, layout=layout_for("llama")
    )
