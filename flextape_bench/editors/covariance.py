"""Second-moment statistics C = E[k k^T] of the keys entering an MLP output projection, over a text corpus.

Samples are truncated to the model's full context (as the reference's layer_stats), or to `mom2_max_tokens` where it
is set. Corpora: `wikipedia` (as MEMIT: English Wikipedia through `datasets`, needs the Hub), `file:PATH` (a local text
file, one sample per paragraph), or `model` (text sampled from the model itself under a fixed seed, for offline
use). Statistics are cached on disk per (model weights, module, corpus identity, sample count, token length,
dtype) and computed for several layers in one pass over the corpus; a damaged cache file (flextape_bench.checksums)
is reported and computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol, cast

import torch
from transformers import GenerationMixin

from flextape_bench.checksums import DamagedFile, load_torch, read_intact, save_torch, warn_damaged, write_json
from flextape_bench.editors.base import corpus_length
from flextape_bench.editors.hooks import capture, stop_after_layer
from flextape_bench.errors import UserError
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.progress import progress_bar
from flextape_bench.weights import execution_device

WIKIPEDIA = ("wikimedia/wikipedia", "20231101.en")
log = logging.getLogger(__name__)


class CorpusSettings(Protocol):
    """The key statistics' corpus settings among an editor's hyperparameters (the `mom2_*` fields)."""

    @property
    def mom2_dataset(self) -> str: ...

    @property
    def mom2_n_samples(self) -> int: ...

    @property
    def mom2_max_tokens(self) -> int | None: ...


def _wikipedia(n: int) -> list[str]:
    try:
        import datasets

        stream = datasets.load_dataset(*WIKIPEDIA, split="train", streaming=True)
        return [row["text"] for _, row in zip(range(n), stream)]
    except Exception as exc:  # any Hub or network failure: the user must pick an offline corpus
        raise UserError(
            f"could not read the Wikipedia corpus {WIKIPEDIA[0]} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "offline, use --hparams mom2_dataset=model (text sampled from the model) or mom2_dataset=file:PATH"
        ) from exc


def _file(path: Path, n: int) -> list[str]:
    if not path.is_file():
        raise UserError(f"mom2_dataset file {path} does not exist; give a UTF-8 text file (paragraphs = samples)")
    paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return paragraphs[:n]


@torch.no_grad()
def _model_samples(adapter: ModelAdapter, n: int, max_tokens: int, seed: int, batch: int = 32) -> list[str]:
    """`n` texts of `max_tokens` tokens sampled (top-k 50) from the model, starting from BOS, under `seed`."""
    tok = adapter.tokenizer
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    torch.manual_seed(seed)
    texts: list[str] = []
    for size in progress_bar([min(batch, n - i) for i in range(0, n, batch)], desc="sampling corpus", unit="batch"):
        ids = torch.full((size, 1), start, device=adapter.input_device)
        causal_lm = cast(GenerationMixin, adapter.model)  # PreTrainedModel does not declare generate
        out = causal_lm.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            top_k=50,
            max_new_tokens=max_tokens,
            min_new_tokens=max_tokens,
            pad_token_id=tok.pad_token_id,
        )
        texts += tok.batch_decode(out[:, 1:], skip_special_tokens=True)
    return texts


def corpus_identity(corpus: str, max_tokens: int, seed: int) -> str:
    if corpus == "wikipedia":
        return f"{WIKIPEDIA[0]}@{WIKIPEDIA[1]}"
    if corpus == "model":
        return f"model-samples(seed={seed},tokens={max_tokens})"
    if corpus.startswith("file:"):
        path = Path(corpus[5:])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"
        return f"file:{path.name}@{digest}"
    raise UserError(f"mom2_dataset {corpus!r} is not one of wikipedia, model, file:PATH")


def corpus_texts(adapter: ModelAdapter, corpus: str, n: int, max_tokens: int, seed: int) -> list[str]:
    corpus_identity(corpus, max_tokens, seed)  # validates the name
    if corpus == "wikipedia":
        return _wikipedia(n)
    if corpus == "model":
        return _model_samples(adapter, n, max_tokens, seed)
    return _file(Path(corpus[5:]), n)


def cached_corpus(adapter: ModelAdapter, folder: Path, corpus: str, n: int, max_tokens: int, seed: int) -> list[str]:
    """The corpus texts; text sampled from the model is kept in `folder` (the model's statistics folder), so that
    later statistics and MEND's locality texts use the same samples without sampling again."""
    if corpus != "model":
        return corpus_texts(adapter, corpus, n, max_tokens, seed)
    identity = corpus_identity(corpus, max_tokens, seed)
    key = json.dumps([identity, n, adapter.tokenizer_fingerprint, adapter.config_fingerprint])  # folder: the weights
    path = folder / f"corpus_{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    cached = read_intact(path, "sampling the corpus again")
    if cached is not None:
        return cached["texts"]
    texts = corpus_texts(adapter, corpus, n, max_tokens, seed)
    write_json(path, {"corpus": identity, "samples": n, "texts": texts})
    return texts


def sample_length(adapter: ModelAdapter, corpus: str, cap: int | None) -> int:
    """Tokens per corpus sample: the model's full context, as the reference's layer_stats takes, capped by
    `mom2_max_tokens` where given; text sampled from the model (`model`) needs the cap, its length."""
    config = adapter.model.config
    context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    for field, problem in corpus_length(corpus, cap):
        raise UserError(f"{field}: {problem}")
    if cap is None:
        if not context:
            raise UserError(f"model config {type(config).__name__} gives no context length: set mom2_max_tokens")
        return int(context)
    return min(cap, int(context)) if context else cap


def stats_folder(cache_root: Path, weights: str) -> Path:
    """Where one model's key statistics and sampled corpora live."""
    return cache_root / "stats" / weights[:32]


class Statistics:
    """Cached second moments of one model's MLP-output-projection inputs."""

    def __init__(
        self,
        adapter: ModelAdapter,
        cache_root: Path,
        weights: str,
        corpus: str,
        n_samples: int,
        max_tokens: int = 128,
        seed: int = 0,
    ):
        self.adapter, self.corpus, self.n, self.max_tokens, self.seed = adapter, corpus, n_samples, max_tokens, seed
        self.identity = corpus_identity(corpus, max_tokens, seed)
        self.folder = stats_folder(cache_root, weights)

    def path(self, layer: int) -> Path:
        key = json.dumps(
            [
                self.adapter.layout.mlp_out_weight(layer),
                self.identity,
                self.n,
                self.max_tokens,
                str(self.adapter.dtype),
                self.adapter.tokenizer_fingerprint,
                self.adapter.config_fingerprint,
            ]
        )
        return self.folder / f"mom2_layer{layer}_{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"

    def second_moments(self, layers: Sequence[int]) -> dict[int, torch.Tensor]:
        """E[k k^T] (float32, on the device each layer computes on) for every layer, computing the uncached (or
        damaged) ones in one pass."""
        out = {}
        for layer in layers:
            if self.path(layer).exists():
                try:
                    out[layer] = self._load(layer)
                except DamagedFile as error:
                    warn_damaged(error, "computing the statistics again")
        missing = [layer for layer in layers if layer not in out]
        if missing:
            self._compute(missing)
            out.update({layer: self._load(layer) for layer in missing})
        return {layer: out[layer] for layer in layers}

    def _load(self, layer: int) -> torch.Tensor:
        device = execution_device(self.adapter.model, self.adapter.layout.mlp_out_weight(layer))
        return load_torch(self.path(layer), map_location=device)["mom2"]

    @torch.no_grad()
    def _compute(self, layers: Sequence[int]) -> None:
        adapter, tok = self.adapter, self.adapter.tokenizer
        log.info("computing key statistics for layers %s over %d samples of %s", list(layers), self.n, self.identity)
        texts = cached_corpus(adapter, self.folder, self.corpus, self.n, self.max_tokens, self.seed)
        stores: dict[int, dict[str, torch.Tensor]] = {layer: {} for layer in layers}
        modules = {
            layer: adapter.model.get_submodule(adapter.layout.layer_path(adapter.layout.mlp_out, layer))
            for layer in layers
        }
        sums: dict[int, torch.Tensor] = {}
        count = 0
        batches = [texts[i : i + 16] for i in range(0, len(texts), 16)]
        with ExitStack() as hooks:
            for layer in layers:
                hooks.enter_context(capture(modules[layer], stores[layer]))
            hooks.enter_context(stop_after_layer(adapter.layout.layer_list(adapter.model), max(layers)))
            for chunk in progress_bar(batches, desc="key statistics", unit="batch"):
                enc = tok(chunk, return_tensors="pt", padding=True, truncation=True, max_length=self.max_tokens)
                enc = {k: v.to(adapter.input_device) for k, v in enc.items()}
                adapter.body_hidden(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
                keep = enc["attention_mask"].bool()
                count += int(keep.sum())
                for layer in layers:
                    keys = stores[layer]["input"][keep.to(stores[layer]["input"].device)].double()
                    sums[layer] = sums.get(layer, 0) + keys.T @ keys
        for layer in layers:
            save_torch(
                self.path(layer), {"mom2": (sums[layer] / count).float().cpu(), "count": count, "corpus": self.identity}
            )


def layer_second_moments(
    adapter: ModelAdapter, cache: Path, weights: str, hparams: CorpusSettings, layers: Sequence[int], seed: int
) -> dict[int, torch.Tensor]:
    """E[k k^T] per layer with the corpus settings of an editor's hyperparameters."""
    length = sample_length(adapter, hparams.mom2_dataset, hparams.mom2_max_tokens)
    stats = Statistics(adapter, cache, weights, hparams.mom2_dataset, hparams.mom2_n_samples, length, seed)
    return stats.second_moments(layers)
