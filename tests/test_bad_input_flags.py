"""Bad `--hparams`, `--seed`, `--tasks` and `stats --editor` input: one error line naming the flag (or the hparams
file and line), the key, the value and what is valid, before any model loads (`no_model`), and nothing written.
Layer indices are checked against the layer count of the model's config, read from disk without its weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input import PREFIX, error_of, record, refused
from split_checks import save
from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig

from flextape_bench.cli import main
from flextape_bench.editors import hparams

HPARAMS = hparams.HPARAMS_DIR


@pytest.fixture
def llama_dir(tmp_path) -> Path:
    """A local model folder holding only the config of a 3-layer Llama: its layers are known, nothing can load."""
    folder = tmp_path / "llama3"
    LlamaConfig(
        num_hidden_layers=3,
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
    ).save_pretrained(folder)
    return folder


def _run(capsys, ws, argv: list[str], *facts: str) -> str:
    ws.task("mine", [record(1)])
    return refused(capsys, ws, [*ws.run_args("mine"), *argv], *facts)


# --hparams: types and ranges of every editor's values, without a model -------------------------------------------


@pytest.mark.parametrize(
    "editor, pair, message",
    [
        ("ft", "lr=abc", "--hparams lr=abc: lr: expected a number, got the string 'abc'"),
        (
            "ft",
            "layers=&a [*a]",
            "--hparams layers=...: the value is not valid YAML (YAML anchors (&name) and aliases "
            "(*name) are not allowed); write e.g. --hparams layers=1e-3 or --hparams layers=[1,2]",
        ),
        (
            "ft",
            "lr=[1",
            "--hparams lr=...: the value is not valid YAML (expected ',' or ']', but got '<stream end>'); "
            "write e.g. --hparams lr=1e-3 or --hparams lr=[1,2]",
        ),
        ("ft", "num_steps=-3", "--hparams num_steps=-3: num_steps: -3 must be greater than 0"),
        ("ft", "num_steps=2.5", "--hparams num_steps=2.5: num_steps: expected a whole number, got the float 2.5"),
        ("ft", "lr=inf", "--hparams lr=inf: lr: expected a finite number, got the float inf"),
        ("ft", "norm_constraint=0", "--hparams norm_constraint=0: norm_constraint: 0 must be greater than 0"),
        ("ft", "weight_decay=-1", "--hparams weight_decay=-1: weight_decay: -1 must be 0 (off) or more"),
        (
            "ft",
            "batch_size=true",
            "--hparams batch_size=true: batch_size: expected a whole number, got the boolean true",
        ),
        ("ft", "layers=4", "--hparams layers=4: layers: expected a list, got the int 4; write e.g. [1, 2]"),
        ("ft", "layers=[]", "--hparams layers=[]: layers: the list is empty; name at least one"),
        ("ft", "layers=[a]", "--hparams layers=[a]: layers[0]: expected a whole number, got the string 'a'"),
        ("ft", "loss=nll", "--hparams loss=nll: loss: the string 'nll' is not one of prompt_end, teacher_forced"),
        ("rome", "v_lr=-0.5", "--hparams v_lr=-0.5: v_lr: -0.5 must be greater than 0"),
        ("rome", "kl_factor=-1", "--hparams kl_factor=-1: kl_factor: -1 must be 0 (off) or more"),
        (
            "rome",
            "mom2_adjustment=2",
            "--hparams mom2_adjustment=2: mom2_adjustment: expected true or false, got the int 2",
        ),
        ("rome", "mom2_max_tokens=0", "--hparams mom2_max_tokens=0: mom2_max_tokens: 0 must be greater than 0"),
        (
            "rome",
            "context_template_length_params=[[5]]",
            "--hparams context_template_length_params=[[5]]: context_template_length_params[0]: [5] is not a [length, "
            "count] pair of a length of 1 or more and a count of 0 or more, e.g. [10, 5]",
        ),
        (
            "memit",
            "context_template_length_params=[[5,2]]",
            "--hparams context_template_length_params=[[5, 2]]: context_template_length_params[0]: [5, 2]: a count of 2 "
            "gives each of the 5 start words 0 texts (count // 5); give a count of 5 or more, e.g. [10, 5]",
        ),
        (
            "memit",
            "mom2_dataset=wiki",
            "--hparams mom2_dataset=wiki: mom2_dataset: 'wiki' is not one of wikipedia, model, file:PATH",
        ),
        ("memit", "mom2_n_samples=0", "--hparams mom2_n_samples=0: mom2_n_samples: 0 must be greater than 0"),
        (
            "memit",
            "mom2_update_weight=-1",
            "--hparams mom2_update_weight=-1: mom2_update_weight: -1 must be greater than 0",
        ),
        ("alphaedit", "L2=0", "--hparams L2=0: L2: 0 must be greater than 0"),
        (
            "alphaedit",
            "nullspace_threshold=x",
            "--hparams nullspace_threshold=x: nullspace_threshold: expected a number, got the string 'x'",
        ),
        ("mend", "rank=0", "--hparams rank=0: rank: 0 must be greater than 0"),
        ("mend", "val_size=0", "--hparams val_size=0: val_size: 0 must be greater than 0"),
        (
            "mend",
            "loc_corpus=web",
            "--hparams loc_corpus=web: loc_corpus: 'web' is not one of wikipedia, model, file:PATH",
        ),
        ("mend", "checkpoint=7", "--hparams checkpoint=7: checkpoint: expected a string, got the int 7"),
    ],
)
def test_bad_hparams_value(capsys, ws, no_model, editor, pair, message):
    assert _run(capsys, ws, ["--editor", editor, "--hparams", pair]) == PREFIX + message


def test_missing_corpus_file(capsys, ws, no_model):
    missing = ws.root / "corpus.txt"
    _run(
        capsys,
        ws,
        ["--editor", "rome", "--hparams", f"mom2_dataset=file:{missing}"],
        f"--hparams mom2_dataset=file:{missing}: mom2_dataset: {missing} is not a file; give a UTF-8 text file "
        "(paragraphs are samples)",
    )


# --hparams and the packaged YAML: layer indices against the model's layer count -----------------------------------


@pytest.mark.parametrize(
    "editor, pair, message",
    [
        ("rome", "layer=999", "--hparams layer=999: layer: layer 999 does not exist"),
        ("memit", "layers=[0,3]", "--hparams layers=[0, 3]: layers[1]: layer 3 does not exist"),
        ("alphaedit", "layers=[1,2,7]", "--hparams layers=[1, 2, 7]: layers[2]: layer 7 does not exist"),
        ("ft", "layers=[-1]", "--hparams layers=[-1]: layers[0]: layer -1 does not exist"),
        ("mend", "layers=[2,5]", "--hparams layers=[2, 5]: layers[1]: layer 5 does not exist"),
    ],
)
def test_layer_past_the_models_layers(capsys, ws, no_model, llama_dir, editor, pair, message):
    line = _run(capsys, ws, ["--model", str(llama_dir), "--editor", editor, "--hparams", pair])
    assert line == f"{PREFIX}{message}: the model has 3 layers (0-2)"


def test_packaged_layer_past_the_models_layers_names_file_and_line(capsys, ws, no_model, llama_dir):
    """rome/llama.yaml edits layer 5 (of a 7B Llama's 32): a 3-layer Llama has none."""
    _run(
        capsys,
        ws,
        ["--model", str(llama_dir), "--editor", "rome"],
        f"{HPARAMS / 'rome' / 'llama.yaml'}:1: layer: layer 5 does not exist: the model has 3 layers (0-2); override "
        "it with --hparams layer=VALUE",
    )


def test_embedded_model_layers_from_its_converted_config(capsys, ws, no_model):
    """The embedded model's config is read from its converted folder, without loading it."""
    folder = ws.root / "cache" / "models" / "gemma3-270m"
    Gemma3TextConfig(
        num_hidden_layers=3,
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        vocab_size=100,
    ).save_pretrained(folder)
    _run(
        capsys,
        ws,
        ["--editor", "memit", "--hparams", "layers=[2,3]"],
        "--hparams layers=[2, 3]: layers[1]: layer 3 does not exist: the model has 3 layers (0-2)",
    )


@pytest.mark.parametrize("editor, layer", [("rome", "layer=1"), ("memit", "layers=[0,1]")])
def test_model_corpus_without_a_sample_length(capsys, ws, no_model, llama_dir, editor, layer):
    """The Llama files take the full context (mom2_max_tokens: null, line 11); text sampled from the model needs a
    length: refused before the model loads, naming the file and line of the null."""
    _run(
        capsys,
        ws,
        ["--model", str(llama_dir), "--editor", editor, "--hparams", layer, "--hparams", "mom2_dataset=model"],
        f"{HPARAMS / editor / 'llama.yaml'}:11: mom2_max_tokens: mom2_dataset=model samples texts of mom2_max_tokens "
        "tokens; set a number, e.g. 64; override it with --hparams mom2_max_tokens=VALUE",
    )


def test_bad_value_in_the_packaged_yaml_names_file_and_line(capsys, ws, no_model, llama_dir, monkeypatch):
    folder = ws.root / "hparams"
    (folder / "ft").mkdir(parents=True)
    (folder / "ft" / "llama.yaml").write_text(
        "# FT-L\nlayers: [0]\nlr: 5.0e-4\nnum_steps: -3\nnorm_constraint: 5.0e-5\n"
    )
    monkeypatch.setattr(hparams, "HPARAMS_DIR", folder)
    _run(
        capsys,
        ws,
        ["--model", str(llama_dir), "--editor", "ft"],
        f"{folder / 'ft' / 'llama.yaml'}:4: num_steps: -3 must be greater than 0; override it with --hparams "
        "num_steps=VALUE",
    )


def test_override_replaces_a_bad_packaged_value(ws, no_model, llama_dir):
    """A valid override of the packaged layer is not refused: the run goes on to load the model."""
    ws.task("mine", [record(1)])
    with pytest.raises(AssertionError, match="the model was loaded"):
        main([*ws.run_args("mine"), "--model", str(llama_dir), "--editor", "rome", "--hparams", "layer=2"])


# stats and train-mend check the same values, before their model loads --------------------------------------------


def test_stats_checks_hparams(capsys, ws, no_model):
    line = error_of(capsys, ["stats", "--editor", "memit", "--hparams", "mom2_dataset=wiki"])
    assert line == (
        PREFIX + "--hparams mom2_dataset=wiki: mom2_dataset: 'wiki' is not one of wikipedia, model, file:PATH"
    )


def test_stats_checks_layers(capsys, ws, no_model, llama_dir):
    line = error_of(capsys, ["stats", "--model", str(llama_dir), "--editor", "alphaedit"])
    assert line == (
        f"{PREFIX}{HPARAMS / 'alphaedit' / 'llama.yaml'}:1: layers[0]: layer 4 does not exist: the model "
        "has 3 layers (0-2); override it with --hparams layers=VALUE"
    )


def test_train_mend_checks_hparams(capsys, ws, no_model):
    line = error_of(capsys, ["train-mend", "--hparams", "steps=0"])
    assert line == PREFIX + "--hparams steps=0: steps: 0 must be greater than 0"


@pytest.mark.parametrize("editor", ["none", "ft", "ft-l", "mend"])
def test_stats_for_an_editor_without_statistics(capsys, ws, no_model, editor):
    line = error_of(capsys, ["stats", "--editor", editor])
    assert line == (
        f"{PREFIX}editor {editor!r} uses no key statistics; stats is for alphaedit, memit and rome (--editor NAME)"
    )


# --seed and --tasks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["18446744073709551616", "4294967296", "-1", "abc"])
@pytest.mark.parametrize("command", ["run", "stats", "train-mend"])
def test_seed_out_of_range(capsys, ws, no_model, command, seed):
    ws.task("mine", [record(1)])
    argv = ws.run_args("mine") if command == "run" else []
    line = refused(capsys, ws, [command, *argv, "--seed", seed])
    assert line == (
        f"{PREFIX}argument --seed: {seed!r} is not a whole number from 0 to 4294967295 (2**32 - 1, what "
        f"torch and numpy seed with) (see `flextape-bench {command} --help`)"
    )


@pytest.mark.parametrize("tasks", [",", "", " , "])
@pytest.mark.parametrize("command", ["run", "train-mend"])
def test_tasks_naming_no_task(capsys, ws, no_model, command, tasks):
    line = refused(capsys, ws, [command, "--tasks", tasks, "--include-path", str(ws.tasks), "--data-dir", str(ws.data)])
    assert line == (
        f"{PREFIX}argument --tasks: {tasks!r} names no task; give comma-separated task or group names, globs or task "
        f"YAML files, e.g. seesaw_eff (`flextape-bench list tasks` lists them) (see `flextape-bench {command} --help`)"
    )


# --model-args and --apply-chat-template ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, fact",
    [
        (
            "revison=main",
            "--model-args: unknown key 'revison'; did you mean 'revision'? accepted keys: attn_implementation, "
            "revision, subfolder, trust_remote_code",
        ),
        ("token=hf_secret", "--model-args token: never give a token or key on the command line"),
        ("revision=main", "--model-args revision: means nothing for the embedded model; it takes attn_implementation"),
        ("trust_remote_code=maybe", "--model-args trust_remote_code='maybe': give true or false"),
        ("pretrained=gpt2", "--model-args pretrained: give the model with --model"),
        ("revision", "argument --model-args: 'revision' is not KEY=VALUE; write e.g. revision=main"),
    ],
)
@pytest.mark.parametrize("command", ["run", "stats", "train-mend"])
def test_bad_model_args(capsys, ws, no_model, command, value, fact):
    ws.task("mine", [record(1)])
    argv = ws.run_args("mine") if command == "run" else []
    line = refused(capsys, ws, [command, *argv, "--model-args", value], fact)
    assert "hf_secret" not in line


def test_model_args_in_lm_evals_spelling(capsys, ws, no_model):
    ws.task("mine", [record(1)])
    refused(capsys, ws, [*ws.run_args("mine"), "--model_args", "revison=main"], "unknown key 'revison'")


def test_chat_template_of_a_tokenizer_without_one_before_the_weights_load(
    capsys, ws, tiny_llama, tmp_path, monkeypatch
):
    model = save(tiny_llama, tmp_path / "tiny")
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("weights loaded"))
    ws.task("mine", [record(1)])
    refused(
        capsys,
        ws,
        ["--model", str(model), *ws.run_args("mine"), "--apply-chat-template"],
        f"--apply-chat-template: the tokenizer of model '{model}' has no chat template",
        "leave the flag out, or give a chat model",
    )
