"""Hyperparameter validation: every field of every editor's hparams declares a type the checks understand, the
packaged YAML files pass, and bad values are named with their key."""

import dataclasses
from pathlib import Path

import pytest

from flextape_bench.editors import EDITORS
from flextape_bench.editors.ft import FTHparams
from flextape_bench.editors.hparams import HPARAMS_DIR, check_overrides, load_hparams, value_problem
from flextape_bench.editors.memit import MEMITHparams
from flextape_bench.editors.mend import MENDHparams
from flextape_bench.editors.rome import ROMEHparams
from flextape_bench.errors import UserError
from flextape_bench.models import LAYOUTS, MODELS

HPARAMS_CLASSES = [
    entry.obj.hparams_class for entry in EDITORS.entries() if dataclasses.fields(entry.obj.hparams_class)
]
PACKAGED = sorted((path.parent.name, path.stem) for path in HPARAMS_DIR.glob("*/*.yaml"))


def test_every_editor_with_hparams_has_a_file_per_family_and_per_model_tuned_on_its_own():
    editors = {name for name, _ in PACKAGED}
    assert editors == {"alphaedit", "ft", "memit", "mend", "rome"}
    own = {entry.obj.hparams_family for entry in MODELS.entries() if getattr(entry.obj, "hparams_family", None)}
    families = {layout.family for layout in LAYOUTS.values()} | own
    assert families == {"gpt2", "gptj", "llama", "mistral", "gemma3", "smollm2"}
    assert all({family for name, family in PACKAGED if name == editor} == families for editor in editors)


@pytest.mark.parametrize("editor, family", PACKAGED)
def test_packaged_hparams_pass_their_checks(editor, family):
    hparams = load_hparams(editor, EDITORS.get(editor).hparams_class, family, {})
    assert dataclasses.asdict(hparams)


@pytest.mark.parametrize("cls", HPARAMS_CLASSES, ids=lambda cls: cls.__name__)
def test_every_field_is_checked(cls):
    """A value of no YAML type is refused for every field, with the field's name: no field goes unchecked."""
    for field in dataclasses.fields(cls):
        assert field.metadata["doc"], field.name
        found = value_problem(cls, {field.name: {"a": 1}})
        assert found is not None and found[0] == field.name and found[1].startswith(f"{field.name}: "), found
        assert "a mapping" in found[1], found


@pytest.mark.parametrize(
    "cls, values, problem",
    [
        (ROMEHparams, {"mom2_max_tokens": None}, None),
        (ROMEHparams, {"mom2_max_tokens": -2}, "mom2_max_tokens: -2 must be greater than 0"),
        (ROMEHparams, {"context_template_length_params": []}, None),
        (
            ROMEHparams,
            {"context_template_length_params": [[5, 10], [0, 1]]},
            "context_template_length_params[1]: [0, 1] is not a [length, count] pair of a length of 1 or more and a count of "
            "0 or more, e.g. [10, 5]",
        ),
        (
            ROMEHparams,
            {"context_template_length_params": [[5, "x"]]},
            "context_template_length_params[0][1]: expected a whole number, got the string 'x'",
        ),
        (ROMEHparams, {"layer": 17}, None),  # no layer count: any index
        (MEMITHparams, {"mom2_update_weight": 2000}, None),  # a whole number is a number
        (
            MEMITHparams,
            {"mom2_update_weight": float("nan")},
            "mom2_update_weight: expected a finite number, got the float nan",
        ),
        (MEMITHparams, {"mom2_dataset": "model"}, None),
        (
            MEMITHparams,
            {"mom2_dataset": "file:"},
            "mom2_dataset:  is not a file; give a UTF-8 text file (paragraphs are samples)",
        ),
        (MENDHparams, {"context_template_count": 0}, None),
        (MENDHparams, {"checkpoint": ""}, None),
    ],
)
def test_value_problems(cls, values, problem):
    found = value_problem(cls, values)
    assert (found and found[1]) == problem


def test_corpus_file_that_exists(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one\n\ntwo\n")
    assert value_problem(MEMITHparams, {"mom2_dataset": f"file:{corpus}"}) is None


@pytest.mark.parametrize(
    "layers, problem",
    [
        ([0, 17], None),
        ([0, 18], "layers[1]: layer 18 does not exist: the model has 18 layers (0-17)"),
        ([-1], "layers[0]: layer -1 does not exist: the model has 18 layers (0-17)"),
    ],
)
def test_layers_against_the_layer_count(layers, problem):
    found = value_problem(MEMITHparams, {"layers": layers}, num_layers=18)
    assert (found and found[1]) == problem


def test_packaged_layers_are_checked_against_the_layer_count():
    """gpt2.yaml holds GPT-2 XL's layers (48): GPT-2 small (12 layers) has no layer 17."""
    with pytest.raises(UserError) as error:
        load_hparams("rome", ROMEHparams, "gpt2", {}, num_layers=12)
    assert str(error.value) == (
        f"{HPARAMS_DIR / 'rome' / 'gpt2.yaml'}:1: layer: layer 17 does not exist: the model "
        "has 12 layers (0-11); override it with --hparams layer=VALUE"
    )
    assert load_hparams("rome", ROMEHparams, "gpt2", {"layer": 8}, num_layers=12).layer == 8


def test_override_names_flag_key_and_value():
    with pytest.raises(UserError) as error:
        check_overrides("mend", MENDHparams, {"layers": [1, "2"]})
    assert str(error.value) == "--hparams layers=[1, '2']: layers[1]: expected a whole number, got the string '2'"


def test_file_value_names_its_line(tmp_path, monkeypatch):
    from flextape_bench.editors import hparams

    (tmp_path / "memit").mkdir()
    text = Path(HPARAMS_DIR / "memit" / "gptj.yaml").read_text().replace("mom2_n_samples: 100000", "mom2_n_samples: 0")
    (tmp_path / "memit" / "gptj.yaml").write_text(text)
    monkeypatch.setattr(hparams, "HPARAMS_DIR", tmp_path)
    line = text.splitlines().index("mom2_n_samples: 0") + 1
    with pytest.raises(UserError, match=rf"gptj\.yaml:{line}: mom2_n_samples: 0 must be greater than 0; override it"):
        load_hparams("memit", MEMITHparams, "gptj", {})
    assert load_hparams("memit", MEMITHparams, "gptj", {"mom2_n_samples": 10}).mom2_n_samples == 10


def _packaged_copy(tmp_path, monkeypatch, editor: str, family: str, edit) -> str:
    """The packaged YAML of `editor` for `family`, changed by `edit`, as the only hparams folder; its text."""
    from flextape_bench.editors import hparams

    (tmp_path / editor).mkdir()
    text = edit((HPARAMS_DIR / editor / f"{family}.yaml").read_text())
    (tmp_path / editor / f"{family}.yaml").write_text(text)
    monkeypatch.setattr(hparams, "HPARAMS_DIR", tmp_path)
    return text


def test_file_list_item_names_its_own_line(tmp_path, monkeypatch):
    """A layer list written one item per line: the bad item's line, not the key's."""
    text = _packaged_copy(
        tmp_path,
        monkeypatch,
        "memit",
        "gptj",
        lambda t: t.replace("layers: [3, 4, 5, 6, 7, 8]", "layers:\n  - 3\n  - 40\n"),
    )
    line = text.splitlines().index("  - 40") + 1
    with pytest.raises(UserError) as error:
        load_hparams("memit", MEMITHparams, "gptj", {}, num_layers=28)
    assert str(error.value) == (
        f"{tmp_path / 'memit' / 'gptj.yaml'}:{line}: layers[1]: layer 40 does not exist: the "
        "model has 28 layers (0-27); override it with --hparams layers=VALUE"
    )


def test_file_unknown_key_names_its_line(tmp_path, monkeypatch):
    text = _packaged_copy(tmp_path, monkeypatch, "ft", "gptj", lambda t: t.replace("num_steps:", "num_stepz:"))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("num_stepz:"))
    with pytest.raises(UserError, match=rf"gptj\.yaml:{line}: num_stepz: unknown key; did you mean 'num_steps'\?$"):
        load_hparams("ft", FTHparams, "gptj", {})


def test_file_missing_key_is_named(tmp_path, monkeypatch):
    _packaged_copy(
        tmp_path,
        monkeypatch,
        "ft",
        "gptj",
        lambda t: "\n".join(row for row in t.splitlines() if not row.startswith("num_steps:")),
    )
    with pytest.raises(
        UserError,
        match=r"gptj\.yaml:1: num_steps: required key missing; add `num_steps:` "
        r"\(epochs over the edits\); override it with --hparams num_steps=VALUE$",
    ):
        load_hparams("ft", FTHparams, "gptj", {})
    assert load_hparams("ft", FTHparams, "gptj", {"num_steps": 3}).num_steps == 3
