"""Shared fixtures: the real embedded model, real tokenizers of each family, tiny random models of every layout."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from bad_input import Workspace
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2TokenizerFast,
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


# The turns of Gemma 3's instruction-tuned chat template, written out (the embedded base model's tokenizer has none)
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n{{ message['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@pytest.fixture(scope="session")
def gemma_chat(gemma) -> ModelAdapter:
    """The embedded model scoring and generating through Gemma's chat template (on a copy of its tokenizer)."""
    tokenizer = copy.deepcopy(gemma.tokenizer)
    tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    return dataclasses.replace(gemma, tokenizer=tokenizer, chat_template=True)


def _seesaw_lines() -> list[str]:
    """Text the test tokenizers learn their vocabularies from: real Seesaw-CF probes and targets."""
    records = json.loads((DATA_DIR / "seesaw_cf_P19_P101.json").read_text())
    lines = [p for r in records[:100] for p in r["attribute_prompts"]]
    lines += [
        r["requested_rewrite"]["target_new"]["str"] + " " + r["requested_rewrite"]["target_true"]["str"]
        for r in records
    ]
    return lines


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """A GPT-2-style byte-level BPE tokenizer (no BOS, a word's leading space inside its first token, as GPT-2's,
    GPT-J's and SmolLM2's) with a 4,000-entry vocabulary learned on every Seesaw-CF task's probes and edit prompts."""
    from tokenizers import ByteLevelBPETokenizer

    lines = []
    for path in sorted(DATA_DIR.glob("seesaw_cf_*.json")):
        records = json.loads(path.read_text())
        lines += [p for r in records[:100] for p in r.get("attribute_prompts", [])]
        lines += [
            r["requested_rewrite"]["prompt"].format(r["requested_rewrite"]["subject"])
            + " "
            + r["requested_rewrite"]["target_new"]["str"]
            for r in records
        ]
    trainer = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    trainer.train_from_iterator(lines, vocab_size=4000, min_frequency=2, special_tokens=["<|endoftext|>"])
    return GPT2TokenizerFast(tokenizer_object=trainer._tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


@pytest.fixture(scope="session")
def llama_tokenizer():
    """A Llama (SentencePiece-convention, metaspace) tokenizer with a small BPE vocabulary learned on Seesaw-CF."""
    from tokenizers import SentencePieceBPETokenizer

    trainer = SentencePieceBPETokenizer()
    trainer.train_from_iterator(
        _seesaw_lines(), vocab_size=1500, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>"]
    )
    model = json.loads(trainer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = LlamaTokenizer(vocab=model["vocab"], merges=merges, add_bos_token=True)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tiny_config(arch: str, vocab: int):
    # A wide initialisation gives peaked next-token distributions, so edits have something to move.
    common = dict(vocab_size=vocab, num_hidden_layers=3, num_attention_heads=4, initializer_range=0.2)
    if arch == "gpt2":
        return GPT2Config(n_embd=64, n_layer=3, n_head=4, n_positions=1024, vocab_size=vocab, initializer_range=0.2)
    if arch == "gptj":
        return GPTJConfig(
            n_embd=64, n_layer=3, n_head=4, n_positions=1024, rotary_dim=8, vocab_size=vocab, initializer_range=0.2
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
