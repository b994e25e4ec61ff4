"""ROME, MEMIT and AlphaEdit on tiny models of every architecture: the published updates, declared parameters only,
and the model left as it was."""

import pytest
import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors import EDITORS, EditorContext, load_hparams
from flextape_bench.editors.representations import at_subject
from flextape_bench.editors.value import optimize_values
from flextape_bench.weights import applied_delta

REQUESTS = [
    EditRequest("{} was born in", "Marie Waldron", "New York City", "Clunie"),
    EditRequest("The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
]
SMALL = dict(
    v_num_grad_steps=15,
    context_template_length_params=[[4, 5]],
    mom2_dataset="model",
    mom2_n_samples=16,
    mom2_max_tokens=12,
)


def _editor(name, adapter, tmp_path, **extra):
    cls = EDITORS.get(name)
    layers = {"rome": {"layer": 1}}.get(name, {"layers": [0, 1]})
    hparams = load_hparams(name, cls.hparams_class, adapter.layout.family, {**SMALL, **layers, **extra})
    return cls(adapter, hparams, EditorContext(seed=0, cache=tmp_path, weights=adapter.weights_fingerprint()))


@pytest.mark.parametrize("name", ["rome", "memit", "alphaedit"])
def test_edit_touches_declared_parameters_only(tiny, tmp_path, name):
    editor = _editor(name, tiny, tmp_path)
    if name == "alphaedit":  # keep half of the key directions in the null space, whatever the random model's scale
        threshold = max(torch.linalg.eigvalsh(c.double()).median().item() for c in editor.statistics().values())
        editor = _editor(name, tiny, tmp_path, nullspace_threshold=threshold)
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    delta = editor.compute_delta(REQUESTS)
    after = tiny.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the editor never leaves the model edited
    assert set(delta) == set(editor.declared_parameters())
    for name_, value in delta.items():
        assert value.shape == tiny.model.get_parameter(name_).shape and value.abs().sum() > 0


def test_memit_least_squares_moves_the_layer_output_to_the_target(tiny, tmp_path):
    # One layer and the bare prompt only: the keys the update is solved for are exactly the ones checked.
    editor = _editor("memit", tiny, tmp_path, mom2_update_weight=1e-3, layers=[1], context_template_length_params=[])
    site = f"{tiny.layout.layers}.1"
    init, z = optimize_values(tiny, REQUESTS, site, ["{}"], editor.hparams)
    delta = editor.compute_delta(REQUESTS)
    with applied_delta(tiny.model, delta):
        moved = at_subject(tiny, REQUESTS, 1, site, ["{}"], "output")
    wanted, got = z - init, moved - init
    cosine = torch.nn.functional.cosine_similarity(got, wanted)
    left = (z - moved).norm(dim=1) / wanted.norm(dim=1)
    if tiny.layout.post_mlp_norm:  # the norm after the MLP caps how far one layer can move the residual stream
        assert cosine.min() > 0.8 and left.max() < 0.9
    else:
        assert cosine.min() > 0.99 and left.max() < 0.1


def test_rome_update_is_rank_one_and_maps_the_key_exactly(tiny, tmp_path):
    editor = _editor("rome", tiny, tmp_path)
    request = REQUESTS[:1]
    ((name, delta),) = editor.compute_delta(request).items()
    update = delta.T if tiny.layout.conv1d else delta
    assert torch.linalg.matrix_rank(update.double(), rtol=1e-6) == 1
    module = tiny.layout.layer_path(tiny.layout.mlp_out, 1)
    key = at_subject(tiny, request, 1, module, ["{}"], "input")[0]
    before = at_subject(tiny, request, 1, module, ["{}"], "output")[0]
    with applied_delta(tiny.model, {name: delta}):
        after = at_subject(tiny, request, 1, module, ["{}"], "output")[0]
    assert torch.allclose(after - before, update @ key, atol=1e-4)


def test_alphaedit_update_leaves_preserved_keys_unchanged(tiny, tmp_path):
    covs = _editor("alphaedit", tiny, tmp_path).statistics()
    threshold = max(torch.linalg.eigvalsh(c.double()).median().item() for c in covs.values())
    editor = _editor("alphaedit", tiny, tmp_path, nullspace_threshold=threshold)
    delta = editor.compute_delta(REQUESTS)
    for layer in (0, 1):
        update = delta[tiny.layout.mlp_out_weight(layer)]
        update = (update.T if tiny.layout.conv1d else update).double()
        values, vectors = torch.linalg.eigh(covs[layer].double())
        preserved = vectors[:, values >= threshold]  # keys AlphaEdit must not disturb: outside its null space
        assert update.abs().max() > 0
        assert (update @ preserved).abs().max() < 1e-6 * update.abs().max().item()


def test_sequential_alphaedit_keeps_earlier_edits_keys_in_place(tiny, tmp_path):
    """With K_p (the keys of kept edits) in the solve, a later edit moves the outputs of the earlier keys less."""
    from flextape_bench.editors.representations import at_subject_by_type

    covs = _editor("alphaedit", tiny, tmp_path).statistics()
    threshold = max(torch.linalg.eigvalsh(c.double()).median().item() for c in covs.values())
    editor = _editor("alphaedit", tiny, tmp_path, nullspace_threshold=threshold, layers=[1], L2=1e-2)
    first, second = REQUESTS[:1], REQUESTS[1:]
    name = tiny.layout.mlp_out_weight(1)
    site = tiny.layout.layer_path(tiny.layout.mlp_out, 1)
    moved = {}
    for keep in (False, True):
        editor.start_sequence()
        kept = editor.compute_delta(first)
        if keep:
            editor.keep_last()
        with applied_delta(tiny.model, kept):
            update = editor.compute_delta(second)[name]
            keys = at_subject_by_type(tiny, first, 1, site, editor.template_groups, "input")  # the keys K_p holds
        update = (update.T if tiny.layout.conv1d else update).double()
        moved[keep] = (keys.double() @ update.T).norm().item()
    assert moved[True] < 0.5 * moved[False]


def test_context_templates_are_seeded(gemma):
    from flextape_bench.editors.context import context_templates

    first = context_templates(gemma, 2, 6, seed=1)
    assert first == context_templates(gemma, 2, 6, seed=1)
    assert first[0] == "{}" and all(t.endswith(". {}") and "{" not in t[:-3] for t in first[1:])
    assert first != context_templates(gemma, 2, 6, seed=2)


@pytest.fixture(scope="module")
def prompt_corpus(tmp_path_factory, data_dir):
    """A local text corpus (mom2_dataset=file:PATH): Seesaw-CF probe prompts, 20 to a paragraph."""
    import json

    prompts = [
        p for r in json.loads((data_dir / "seesaw_cf_P19_P101.json").read_text())[:40] for p in r["attribute_prompts"]
    ]
    path = tmp_path_factory.mktemp("corpus") / "prompts.txt"
    path.write_text("\n\n".join(". ".join(prompts[i : i + 20]) for i in range(0, len(prompts), 20)))
    return path


@pytest.fixture(scope="module")
def stats_cache(tmp_path_factory):
    """One statistics cache for the gemma tests: layers computed for one editor are reused by the next."""
    return tmp_path_factory.mktemp("stats")


@pytest.mark.parametrize(
    "name, extra",
    [("rome", {"layer": 4}), ("memit", {"layers": [3, 4, 5, 6]}), ("alphaedit", {"layers": [3, 4, 5, 6]})],
)
def test_edits_take_effect_on_gemma(gemma, stats_cache, prompt_corpus, name, extra):
    from flextape_bench.cases import ScoreRequest
    from flextape_bench.scoring import Scorer

    cls = EDITORS.get(name)
    overrides = {
        "context_template_length_params": [[4, 5]],
        "mom2_dataset": f"file:{prompt_corpus}",
        "mom2_n_samples": 100,
        **extra,
    }
    hparams = load_hparams(name, cls.hparams_class, "gemma3", overrides)
    editor = cls(gemma, hparams, EditorContext(seed=0, cache=stats_cache, weights=gemma.weights_fingerprint()))
    requests = [ScoreRequest(r.prompt.replace("{}", r.subject), (r.target_new, r.target_true)) for r in REQUESTS]
    before = gemma.weights_fingerprint()
    delta = editor.compute_delta(REQUESTS)
    assert gemma.weights_fingerprint() == before
    with applied_delta(gemma.model, delta):
        post = Scorer(gemma).score(requests)
    assert all(new.p > true.p for new, true in post), [(new.p, true.p) for new, true in post]


def test_rome_and_memit_templates_are_sampled_as_their_references_sample_them(tiny_llama, monkeypatch):
    from flextape_bench.editors import context

    asked = []

    def fake(adapter, prompts, new_tokens, seed, top_k=5):
        asked.append(([list(p) for p in prompts], list(new_tokens)))
        return ["A {b}"] * len(prompts)

    monkeypatch.setattr(context, "sample_texts", fake)
    tok = tiny_llama.tokenizer
    # rome_main.py: "{}" + per (length, count) count texts from the start token, `length` tokens including it
    rome = context.rome_templates(tiny_llama, [[5, 2], [10, 1]], seed=0)
    assert rome == ["{}", "A b. {}", "A b. {}", "A b. {}"]  # braces deleted
    assert asked[-1] == ([[tok.bos_token_id]] * 3, [4, 4, 9])
    # memit_main.py: [["{}"]] + per (length, count) count // 5 texts from each start word, `length` tokens in all
    memit = context.memit_templates(tiny_llama, [[10, 5]], seed=0)
    assert memit == [["{}"], ["A  b . {}"] * 5]  # braces replaced by spaces
    starts = [tok(w)["input_ids"] for w in ("The", "Therefore", "Because", "I", "You")]
    assert asked[-1] == (starts, [10 - len(s) for s in starts])
