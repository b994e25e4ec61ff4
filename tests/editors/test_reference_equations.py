"""ROME and MEMIT weight changes re-derived in float64 from the papers' equations, on a tiny GPT-2 and a tiny Llama.

Keys, target values, covariance and context templates are fixed by the test; everything else (subject positions,
keys, the current outputs, the updates, MEMIT's layer-by-layer residuals) is computed here with plain forward hooks
and matrix algebra, without the project's helpers, and the editors' deltas must match to 1e-6 relative.
"""

import copy

import pytest
import torch
from conftest import _tiny_adapter

from flextape_bench.cases import EditRequest
from flextape_bench.editors import EditorContext, load_hparams
from flextape_bench.editors import memit as memit_module
from flextape_bench.editors import rome as rome_module
from flextape_bench.editors.memit import MEMITEditor, MEMITHparams
from flextape_bench.editors.rome import ROMEEditor, ROMEHparams
from flextape_bench.editors.value import optimize_values
from flextape_bench.models.adapter import ModelAdapter

REQUESTS = [
    EditRequest("{} was born in", "Marie Waldron", "New York City", "Clunie"),
    EditRequest("The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
]
GROUPS = [["{}"], ["Hello there. {}", "It was a cold day in the city. {}"]]
STATS = dict(
    mom2_dataset="model", mom2_n_samples=4, mom2_max_tokens=8, context_template_length_params=[], v_num_grad_steps=1
)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tiny64(request, bpe_tokenizer, llama_tokenizer):
    """The tiny random GPT-2 (byte-level BPE) or Llama (SentencePiece-style BPE with BOS), in float64."""
    source = _tiny_adapter(request.param, bpe_tokenizer if request.param == "gpt2" else llama_tokenizer)
    return ModelAdapter(
        name=source.name, location="", model=source.model.double(), tokenizer=source.tokenizer, layout=source.layout
    )


def _subject_last(tokenizer, text: str, subject_end: int) -> int:
    """Index of the subject's last token: the length of the tokenized text up to the subject's end, minus one (the
    reference's repr_tools way, independent of the character offsets the project uses)."""
    return len(tokenizer(text[:subject_end])["input_ids"]) - 1


def _read(model, module_path: str, text: str, index: int, tokenizer, which: str) -> torch.Tensor:
    """Module input ("in") or output ("out") at token `index` of `text`, by a forward hook."""
    seen = {}

    def hook(_m, inputs, output):
        seen["in"], seen["out"] = inputs[0], output[0] if isinstance(output, tuple) else output

    handle = model.get_submodule(module_path).register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([tokenizer(text)["input_ids"]]))
    finally:
        handle.remove()
    return seen[which][0, index].double()


def _key(model, tokenizer, module_path: str, template: str, request: EditRequest) -> torch.Tensor:
    prompt = template.replace("{}", request.prompt, 1)
    at = prompt.index("{}")
    text = prompt.replace("{}", request.subject, 1)
    return _read(model, module_path, text, _subject_last(tokenizer, text, at + len(request.subject)), tokenizer, "in")


def _as_out_in(layout, weight: torch.Tensor) -> torch.Tensor:
    return weight.T if layout.conv1d else weight


def _spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + torch.eye(d, dtype=torch.float64)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def test_rome_matches_the_rank_one_equation(tiny64, tmp_path, monkeypatch):
    adapter, layout, layer = tiny64, tiny64.layout, 1
    hparams = load_hparams("rome", ROMEHparams, layout.family, {**STATS, "layer": layer})
    editor = ROMEEditor(adapter, hparams, EditorContext(seed=0, cache=tmp_path, weights="w"))
    editor.__dict__["template_groups"] = [GROUPS[0] + GROUPS[1]]  # ROME: one plain mean over all templates
    d_in = _as_out_in(layout, adapter.model.get_parameter(layout.mlp_out_weight(layer))).shape[1]
    cov = _spd(d_in, 1)
    monkeypatch.setattr(editor, "statistics", lambda: {layer: cov})
    offsets = iter(
        torch.randn(
            len(REQUESTS),
            adapter.model.config.hidden_size,
            dtype=torch.float64,
            generator=torch.Generator().manual_seed(2),
        )
    )
    fixed: list[torch.Tensor] = []

    def fixed_values(adapter_, requests, site, templates, hp):  # v* = v0 + a fixed offset
        init, _ = optimize_values(adapter_, requests, site, templates, hp)  # one evaluation, no step: v0
        fixed.append(init[0] + next(offsets))
        return init, fixed[-1][None]

    monkeypatch.setattr(rome_module, "optimize_values", fixed_values)
    ((name, delta),) = editor.compute_delta(REQUESTS).items()

    model, tok = copy.deepcopy(adapter.model), adapter.tokenizer
    module = layout.layer_path(layout.mlp_out, layer)
    weight = model.get_parameter(name)
    bias = getattr(model.get_submodule(module), "bias", None)
    expected = torch.zeros_like(_as_out_in(layout, weight))
    templates = GROUPS[0] + GROUPS[1]
    for request, v_star in zip(REQUESTS, fixed):  # one after another, each on the model the earlier ones edited
        k_star = torch.stack([_key(model, tok, module, t, request) for t in templates]).mean(0)
        k0 = _key(model, tok, module, "{}", request)
        w = _as_out_in(layout, weight.detach())
        v0 = w @ k0 + (bias.detach() if bias is not None else 0)
        u = torch.linalg.inv(cov) @ k_star
        step = torch.outer(v_star.double() - v0, u) / (u @ k0)  # dW = (v* - W k0) (C^-1 k*)^T / ((C^-1 k*)^T k0)
        expected += step
        with torch.no_grad():
            weight += step.T if layout.conv1d else step
    assert _relative(_as_out_in(layout, delta), expected) < 1e-6


def test_memit_matches_the_layerwise_least_squares(tiny64, tmp_path, monkeypatch):
    adapter, layout, layers, lam = tiny64, tiny64.layout, [0, 1], 3.0
    hparams = load_hparams("memit", MEMITHparams, layout.family, {**STATS, "layers": layers, "mom2_update_weight": lam})
    editor = MEMITEditor(adapter, hparams, EditorContext(seed=0, cache=tmp_path, weights="w"))
    editor.__dict__["template_groups"] = GROUPS
    d_in = _as_out_in(layout, adapter.model.get_parameter(layout.mlp_out_weight(0))).shape[1]
    covs = {layer: _spd(d_in, 10 + layer) for layer in layers}
    monkeypatch.setattr(editor, "statistics", lambda: covs)
    offsets = torch.randn(
        len(REQUESTS), adapter.model.config.hidden_size, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    fixed = {}

    def fixed_values(adapter_, requests, site, templates, hp):  # z = h_L + a fixed offset
        init, _ = optimize_values(adapter_, requests, site, templates, hp)
        fixed["z"] = init + offsets
        return init, fixed["z"]

    monkeypatch.setattr(memit_module, "optimize_values", fixed_values)
    deltas = editor.compute_delta(REQUESTS)

    model, tok = copy.deepcopy(adapter.model), adapter.tokenizer
    z_site = f"{layout.layers}.{layers[-1]}"
    for i, layer in enumerate(layers):
        module = layout.layer_path(layout.mlp_out, layer)
        # keys: the mean within each template type, then across types
        keys = torch.stack(
            [
                torch.stack(
                    [torch.stack([_key(model, tok, module, t, r) for t in group]).mean(0) for group in GROUPS]
                ).mean(0)
                for r in REQUESTS
            ]
        )
        current = []
        for r in REQUESTS:
            text = r.prompt.replace("{}", r.subject)
            at = _subject_last(tok, text, r.prompt.index("{}") + len(r.subject))
            current.append(_read(model, z_site, text, at, tok, "out"))
        resid = (fixed["z"].double() - torch.stack(current)) / (len(layers) - i)  # spread over the layers left
        # dW = R K^T (lambda C + K K^T)^-1 with keys and residuals as columns
        step = resid.T @ keys @ torch.linalg.inv(lam * covs[layer] + keys.T @ keys)
        name = layout.mlp_out_weight(layer)
        assert _relative(_as_out_in(layout, deltas[name]), step) < 1e-6, layer
        with torch.no_grad():
            model.get_parameter(name).add_(step.T if layout.conv1d else step)
