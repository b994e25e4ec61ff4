"""A loaded causal LM with its tokenizer and layout: the one thing scoring and editors receive."""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import torch
from transformers import Cache, DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from flextape_bench.models.layout import Layout
from flextape_bench.weights import execution_device, read_tensor


@dataclass
class ModelAdapter:
    name: str  # registry name, Hub id or local path as the user gave it
    location: str  # what was loaded: Hub id or local directory
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    layout: Layout
    revision: str = ""
    device: str = "cpu"  # the --device it was loaded with, auto resolved: cpu, cuda or spread
    model_args: dict[str, Any] = field(default_factory=dict)  # --model-args given to from_pretrained
    chat_template: bool = False  # scoring and generation read prompts through the tokenizer's chat template
    _fingerprints: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def input_device(self) -> torch.device:
        """Where token ids go: the device the input embeddings compute on (also when accelerate offloads them)."""
        return execution_device(self.model, f"{self.layout.embed}.weight")

    @property
    def dtype(self) -> torch.dtype:
        return cast(torch.Tensor, self.model.get_input_embeddings().weight).dtype

    @cached_property
    def tokenizer_fingerprint(self) -> str:
        """sha256 of the tokenizer's full serialisation (vocabulary, merges, normaliser, special tokens)."""
        tok = self.tokenizer
        backend = getattr(tok, "backend_tokenizer", None)
        text = backend.to_str() if backend is not None else json.dumps(sorted(tok.get_vocab().items()))
        extra = json.dumps([tok.bos_token, tok.eos_token, tok.pad_token, tok.padding_side, type(tok).__name__])
        return hashlib.sha256((text + extra).encode()).hexdigest()

    @cached_property
    def config_fingerprint(self) -> str:
        """sha256 of the model config and attention implementation: what the forward computes besides the weights
        (rotary settings, which also fill the non-persisted rotary buffers; softcapping; norm eps; sliding window)."""
        config = self.model.config.to_dict()
        config["_attn_implementation"] = getattr(self.model.config, "_attn_implementation", None)
        return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()

    def weights_fingerprint(self) -> str:
        """blake2b over every parameter and buffer's bytes, names, shapes and dtypes: the weights' identity.

        Computed on the weights as they are now, wherever they live (offloaded ones included), so a model split over
        devices has the fingerprint of the same weights on one; the runner asks for it before any edit.
        """
        digest = hashlib.blake2b(digest_size=32)
        for name in sorted(self.model.state_dict()):
            tensor = read_tensor(self.model, name)
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
            flat = tensor.contiguous().view(-1)
            digest.update(flat.view(torch.uint8).cpu().numpy().tobytes() if flat.numel() else b"")
        return digest.hexdigest()

    def body_hidden(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden states of the decoder stack (no LM head)."""
        return self.model.get_submodule(self.layout.body)(**inputs, use_cache=False).last_hidden_state

    @torch.no_grad()
    def prefix_cache(self, **inputs: torch.Tensor) -> Cache:
        """Every layer's keys and values of the texts `inputs` give (ids, and for left-padded rows the attention mask
        and position ids), to go on from with `body_hidden_after`."""
        cache = DynamicCache(config=self.model.config)
        body = self.model.get_submodule(self.layout.body)
        placed = {key: value.to(self.input_device) for key, value in inputs.items()}
        body(**placed, **{_cache_argument(body): cache}, use_cache=True)
        return cache

    def body_hidden_after(self, cache: Cache | None, **inputs: torch.Tensor) -> torch.Tensor:
        """`body_hidden` of the continuations of the texts whose keys and values `cache` holds (a copy is extended;
        the attention mask covers the cached positions too, the position ids only the new ones)."""
        if cache is None:
            return self.body_hidden(**inputs)
        body = self.model.get_submodule(self.layout.body)
        extra = {_cache_argument(body): copy.deepcopy(cache)}
        return body(**inputs, **extra, use_cache=True).last_hidden_state

    def token_nll(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """NLL of `labels` under the LM head applied to `hidden` (one row per predicted token)."""
        logits = self.layout.head_logits(self.model, hidden).float()
        return torch.logsumexp(logits, dim=-1) - logits.gather(-1, labels[:, None].to(logits.device))[:, 0]


def _cache_argument(body: torch.nn.Module) -> str:
    """The name of the key/value cache argument of a decoder stack (`past_key_values`, renamed `cache` in
    transformers 5)."""
    return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
