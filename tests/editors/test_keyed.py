"""What ROME, MEMIT and AlphaEdit share (editors/keyed.py) and the editors' hyperparameter type arguments."""

import dataclasses

import pytest
import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors import EDITORS, EditorContext, load_hparams
from flextape_bench.editors.alphaedit import AlphaEditHparams
from flextape_bench.editors.ft import FTHparams
from flextape_bench.editors.keyed import KeyStatisticsEditor
from flextape_bench.editors.memit import MEMITHparams
from flextape_bench.editors.mend import MENDHparams
from flextape_bench.editors.none import NoHparams
from flextape_bench.editors.representations import at_subject
from flextape_bench.editors.rome import ROMEHparams

REQUESTS = [
    EditRequest("{} was born in", "Marie Waldron", "New York City", "Clunie"),
    EditRequest("The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
]
SMALL = dict(context_template_length_params=[[4, 5]], mom2_dataset="model", mom2_n_samples=8, mom2_max_tokens=8)


def test_an_editors_hparams_class_is_its_type_argument():
    assert {entry.name: entry.obj.hparams_class for entry in EDITORS.entries()} == {
        "none": NoHparams,
        "ft": FTHparams,
        "rome": ROMEHparams,
        "memit": MEMITHparams,
        "mend": MENDHparams,
        "alphaedit": AlphaEditHparams,
    }
    assert all(dataclasses.is_dataclass(entry.obj.hparams_class) for entry in EDITORS.entries())


def test_the_key_statistics_editors_are_rome_memit_and_alphaedit():
    keyed = sorted(entry.name for entry in EDITORS.entries() if issubclass(entry.obj, KeyStatisticsEditor))
    assert keyed == ["alphaedit", "memit", "rome"]


def _editor(name, adapter, tmp_path, **extra):
    cls = EDITORS.get(name)
    hparams = load_hparams(name, cls.hparams_class, adapter.layout.family, {**SMALL, **extra})
    return cls(adapter, hparams, EditorContext(seed=0, cache=tmp_path, weights=adapter.weights_fingerprint()))


@pytest.mark.parametrize("name, extra, layers", [("rome", {"layer": 1}, [1]), ("memit", {"layers": [0, 1]}, [0, 1])])
def test_layers_parameters_statistics_and_templates_follow_the_hparams(tiny_llama, tmp_path, name, extra, layers):
    editor = _editor(name, tiny_llama, tmp_path, **extra)
    assert list(editor.edited_layers) == layers
    assert editor.declared_parameters() == [tiny_llama.layout.mlp_out_weight(layer) for layer in layers]
    moments = editor.statistics()
    assert list(moments) == layers
    d_in = tiny_llama.model.config.intermediate_size
    assert all(m.shape == (d_in, d_in) for m in moments.values())
    assert editor.templates[0] == "{}" and editor.run_record() == {
        "context_templates": editor.template_groups,
        "value_optimisation": {"early_stop_loss": 0.05, "logit_budget": 2**26},  # the reference's stop; 256 MiB
    }
    assert len(editor.template_groups) == (1 if name == "rome" else 2)  # ROME: one type; MEMIT: "{}", then samples


def test_rome_keys_are_a_plain_mean_and_memit_keys_weigh_each_type_equally(tiny_llama, tmp_path):
    module = tiny_llama.layout.layer_path(tiny_llama.layout.mlp_out, 1)
    rome = _editor("rome", tiny_llama, tmp_path, layer=1)
    assert torch.equal(rome.keys(REQUESTS, 1), at_subject(tiny_llama, REQUESTS, 1, module, rome.templates, "input"))
    memit = _editor("memit", tiny_llama, tmp_path, layers=[1])
    bare, sampled = (at_subject(tiny_llama, REQUESTS, 1, module, group, "input") for group in memit.template_groups)
    assert torch.allclose(memit.keys(REQUESTS, 1), (bare + sampled) / 2, atol=1e-6)
