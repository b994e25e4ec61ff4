"""Memory: what one padded token of a scoring or generation batch costs, the batch size that fits the free memory
(`--batch-tokens auto`), whether an exception means memory ran out, and the memory a block peaks at (benchmarks).

The cost model and its letters (H, I, A, Q, K, N, V, M, L, b) are documented in docs/architecture.md, "Batch size".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil
import torch

if TYPE_CHECKING:
    from flextape_bench.models.adapter import ModelAdapter

AUTO = "auto"  # --batch-tokens auto
MAX_BATCH_TOKENS = 16384  # default --max-batch-tokens: the most `auto` picks
MAX_HALVINGS = 5  # times `auto` halves its budget after running out of memory in a scoring batch
SAFETY = 0.5  # share of the free memory a batch may plan to use (allocator slack, temporaries not modelled)
FLOAT32 = 4


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is torch (GPU or CPU allocator) or Python running out of memory."""
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "can't allocate memory" in str(exc))
    )


@dataclass(frozen=True)
class Shape:
    """The sizes of a decoder that set its memory per token (letters as in docs/architecture.md, "Batch size")."""

    hidden: int  # H
    intermediate: int  # I
    heads: int  # A
    q_dim: int  # Q
    kv_dim: int  # K
    layers: int  # N
    vocab: int  # V
    mask_kinds: int  # M: one mask per attention layer type (Gemma 3: sliding and full)

    @classmethod
    def of(cls, config: Any) -> Shape:
        """From a transformers config (GPT-2/GPT-J names resolve through their attribute maps)."""
        config = config.get_text_config()
        hidden, heads = config.hidden_size, config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        intermediate = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
        return cls(
            hidden=hidden,
            intermediate=intermediate,
            heads=heads,
            q_dim=heads * head_dim,
            kv_dim=kv_heads * head_dim,
            layers=config.num_hidden_layers,
            vocab=config.vocab_size,
            mask_kinds=len(set(getattr(config, "layer_types", None) or [None])),
        )


def token_bytes(shape: Shape, length: int, dtype_bytes: int, kv_cache: bool = False) -> int:
    """Bytes one padded token of a batch of rows of `length` tokens holds at the peak of a no-grad forward."""
    b, s = dtype_bytes, shape
    activations = b * (3 * s.hidden + 2 * s.q_dim + 2 * s.kv_dim + 4 * s.intermediate)
    attention = FLOAT32 * 3 * s.heads * length
    masks = b * s.mask_kinds * length
    cache = b * 2 * s.layers * s.kv_dim if kv_cache else 0
    return activations + attention + masks + cache


def head_bytes(shape: Shape, positions: int, dtype_bytes: int) -> int:
    """Bytes of the LM head's outputs at `positions` positions at once (logits, their float32 copy, logsumexp's
    temporary)."""
    return positions * shape.vocab * (dtype_bytes + 2 * FLOAT32)


def fitting_tokens(
    free: int, shape: Shape, length: int, dtype_bytes: int, head_positions: int, cap: int, kv_cache: bool = False
) -> int:
    """Padded tokens per batch of rows of at most `length` tokens that fit SAFETY of `free` bytes: at most `cap`,
    at least one row of `length`."""
    usable = SAFETY * free - head_bytes(shape, head_positions, dtype_bytes)
    fits = int(usable // token_bytes(shape, length, dtype_bytes, kv_cache))
    return max(length, min(cap, fits))


def free_bytes(device: torch.device) -> int:
    """Memory free for new tensors on `device`: CUDA, the device's free memory plus what torch's caching allocator
    holds unused; otherwise the system's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return psutil.virtual_memory().available


def model_free_bytes(adapter: ModelAdapter) -> int:
    """The least free memory over the devices the model computes on: where its inputs go and every device holding
    its parameters (a model spread over several devices computes on each; offloaded `meta` parameters are skipped)."""
    devices = {adapter.input_device} | {p.device for p in adapter.model.parameters() if p.device.type != "meta"}
    return min(free_bytes(device) for device in devices)


def used_bytes(device: torch.device) -> int:
    """Memory in use now: on CUDA torch's allocations on `device`; on the CPU the process's resident set size."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    return psutil.Process().memory_info().rss


class PeakMemory:
    """Memory when the `with` block starts (`start`) and its peak while it runs (`peak`), in bytes: on CUDA torch's
    allocations on `device`; on the CPU the process's resident set size, sampled every `interval` seconds by a
    thread (so the peak of a CPU block is as seen by the samples, at entry and exit included)."""

    def __init__(self, device: torch.device, interval: float = 0.02):
        self.device, self.interval = device, interval
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def describe(device: torch.device) -> str:
        """What `peak` measures on `device`, for reports."""
        return "torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS, sampled"

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, used_bytes(self.device))

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = used_bytes(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:  # CUDA
            self.peak = torch.cuda.max_memory_allocated(self.device)
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, used_bytes(self.device))
