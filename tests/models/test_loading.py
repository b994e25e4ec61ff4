"""`models.loading` and `models.load`: `--device auto` resolved and said, `--model-args` reaching `from_pretrained`
(trust_remote_code only when asked), and `--apply-chat-template` refused for a tokenizer without a template before
the weights load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from split_checks import save
from transformers import AutoModelForCausalLM

from flextape_bench import models
from flextape_bench.errors import UserError
from flextape_bench.models.loading import load_model, resolve_device


@pytest.mark.parametrize(
    "cuda, device, line",
    [
        (False, "cpu", "device: cpu (auto: torch sees no CUDA device)"),
        (True, "cuda", "device: cuda (auto: torch sees a CUDA device)"),
    ],
)
def test_auto_is_cuda_where_torch_sees_one_and_says_so(monkeypatch, capsys, cuda, device, line):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto") == device
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.mark.parametrize("device", ["cpu", "cuda", "spread"])
def test_other_devices_stay_and_say_nothing(capsys, device):
    assert resolve_device(device) == device
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def saved(tiny_llama, tmp_path_factory) -> Path:
    """The tiny Llama as a local model directory."""
    return save(tiny_llama, tmp_path_factory.mktemp("tiny-llama"))


def test_auto_loads_on_the_resolved_device_and_records_it(saved, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    adapter = load_model("tiny", str(saved), device="auto")
    assert (adapter.device, adapter.input_device.type) == ("cpu", "cpu")
    assert "device: cpu (auto: torch sees no CUDA device)" in capsys.readouterr().err


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_attn_implementation_reaches_the_model(saved, kernel):
    adapter = models.load(str(saved), model_args={"attn_implementation": kernel})
    assert adapter.model.config._attn_implementation == kernel
    assert adapter.model_args == {"attn_implementation": kernel}


def test_subfolder_loads_the_model_inside_it(tiny_llama, tmp_path):
    save(tiny_llama, tmp_path / "repo" / "checkpoint-1")
    adapter = models.load(str(tmp_path / "repo"), model_args={"subfolder": "checkpoint-1"})
    assert torch.equal(adapter.model.lm_head.weight, tiny_llama.model.lm_head.weight)


REMOTE_CODE = {  # a local model that ships its own model class (as Hub repositories with custom code do)
    "configuration_shipped.py": "from transformers import LlamaConfig\n\n\nclass ShippedConfig(LlamaConfig):\n"
    "    pass\n",
    "modeling_shipped.py": "from transformers import LlamaForCausalLM\n\nfrom .configuration_shipped import "
    "ShippedConfig\n\n\nclass ShippedForCausalLM(LlamaForCausalLM):\n    config_class = ShippedConfig\n",
}


@pytest.fixture
def shipping_code(tiny_llama, tmp_path) -> Path:
    folder = save(tiny_llama, tmp_path / "shipped")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "configuration_shipped.ShippedConfig",
        "AutoModelForCausalLM": "modeling_shipped.ShippedForCausalLM",
    }
    (folder / "config.json").write_text(json.dumps(config))
    for name, code in REMOTE_CODE.items():
        (folder / name).write_text(code)
    return folder


def test_code_a_model_ships_runs_only_when_asked(shipping_code):
    assert type(models.load(str(shipping_code)).model).__name__ == "LlamaForCausalLM"  # transformers' own class
    asked = models.load(str(shipping_code), model_args={"trust_remote_code": True})
    assert type(asked.model).__name__ == "ShippedForCausalLM"


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("gemma3-270m", {"revision": "main"}, "--model-args revision: means nothing for the embedded model"),
        ("gemma3-270m", {"trust_remote_code": True}, "it takes attn_implementation"),
        ("owner/model", {"revison": "main"}, "unknown key 'revison'; did you mean 'revision'? accepted keys: "),
        ("owner/model", {"token": "hf_abc"}, "set HF_TOKEN in the environment"),
        ("owner/model", {"trust_remote_code": "yes"}, "--model-args trust_remote_code='yes': give true or false"),
    ],
)
def test_model_args_refused_before_anything_loads(monkeypatch, name, args, message):
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("?", r"\?")) as refused:
        models.load(name, model_args=args)
    assert "hf_abc" not in str(refused.value)


def test_revision_means_nothing_for_a_local_directory(saved):
    with pytest.raises(UserError, match="--model-args revision: means nothing for the local directory"):
        models.load(str(saved), model_args={"revision": "main"})


def test_chat_template_refused_for_the_embedded_base_model_before_its_weights_load(gemma, monkeypatch):
    """Gemma 3 270M is the base model: its GGUF, and so its tokenizer, carries no chat template."""
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("weights loaded"))
    with pytest.raises(UserError) as refused:
        load_model("gemma3-270m", gemma.location, chat_template=True)
    assert str(refused.value) == (
        "--apply-chat-template: the tokenizer of model 'gemma3-270m' has no chat template (base models usually "
        "have none); leave the flag out, or give a chat model"
    )
