"""The batch-size budget of `--batch-tokens auto` against hand-computed values of the documented formula, its cap and
floor, the model shapes it reads, and the peak-memory meter of the benchmarks."""

import json
import subprocess
import sys

import psutil
import torch
from transformers import Gemma3TextConfig, GPT2Config, LlamaConfig

from flextape_bench.memory import Shape, fitting_tokens, head_bytes, is_out_of_memory, model_free_bytes, token_bytes

LLAMA = Shape.of(
    LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_hidden_layers=3,
        vocab_size=1000,
    )
)
MIB = 2**20


def test_shapes_of_configs():
    assert Shape(hidden=64, intermediate=128, heads=4, q_dim=64, kv_dim=32, layers=3, vocab=1000, mask_kinds=1) == LLAMA
    gemma = Gemma3TextConfig(
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        num_hidden_layers=3,
        vocab_size=1000,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
    )
    assert Shape.of(gemma) == Shape(
        hidden=64, intermediate=128, heads=4, q_dim=64, kv_dim=16, layers=3, vocab=1000, mask_kinds=2
    )  # one mask per layer type
    gpt2 = GPT2Config(n_embd=64, n_layer=3, n_head=4, vocab_size=1000)  # n_inner None: 4 * hidden
    assert Shape.of(gpt2) == Shape(
        hidden=64, intermediate=256, heads=4, q_dim=64, kv_dim=64, layers=3, vocab=1000, mask_kinds=1
    )


def test_token_and_head_bytes_by_hand():
    # float32, rows of 10 tokens: 4 (3*64 + 2*64 + 2*32 + 4*128) + 4*3*4*10 (scores) + 4*1*10 (mask) = 3584 + 480 + 40
    assert token_bytes(LLAMA, 10, 4) == 4104
    assert token_bytes(LLAMA, 20, 4) == 3584 + 960 + 80  # scores and mask grow with the row length
    assert token_bytes(LLAMA, 10, 4, kv_cache=True) == 4104 + 4 * 2 * 3 * 32  # + keys and values of 3 layers
    assert head_bytes(LLAMA, 512, 4) == 512 * 1000 * (4 + 8)


def test_fitting_tokens_by_hand():
    # (0.5 * 16 MiB - 6,144,000 head bytes) // 4104 = 2,244,608 // 4104
    assert fitting_tokens(16 * MIB, LLAMA, 10, 4, 512, cap=16384) == 546
    # bfloat16: (8,388,608 - 512 * 1000 * 10) // (2 * 896 + 480 + 2 * 10) = 3,268,608 // 2292
    assert fitting_tokens(16 * MIB, LLAMA, 10, 2, 512, cap=16384) == 1426


def test_fitting_tokens_cap_and_floor():
    assert fitting_tokens(2**40, LLAMA, 10, 4, 512, cap=16384) == 16384
    assert fitting_tokens(16 * MIB, LLAMA, 10, 4, 512, cap=500) == 500
    assert fitting_tokens(2 * head_bytes(LLAMA, 512, 4), LLAMA, 10, 4, 512, cap=16384) == 10  # nothing left: one row
    assert fitting_tokens(0, LLAMA, 37, 4, 512, cap=16384) == 37


def test_out_of_memory_errors():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


PEAK_SCRIPT = """
import json, time, psutil, torch
from flextape_bench.memory import PeakMemory
before = psutil.Process().memory_info().rss
with PeakMemory(torch.device("cpu")) as meter:
    block = torch.ones(64 * 2**20)  # 256 MiB, touched
    time.sleep(0.2)
    del block
print(json.dumps([meter.start - before, meter.peak - before]))
"""


def test_peak_memory_sees_a_freed_allocation():
    # in a fresh process: a long-lived one may serve the block from memory it already holds, leaving RSS flat
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, check=True).stdout
    start, peak = json.loads(out.splitlines()[-1])
    assert start < 100 * MIB and peak > 200 * MIB


def test_free_memory_of_a_cpu_model_is_the_available_ram(tiny_llama):
    assert abs(model_free_bytes(tiny_llama) - psutil.virtual_memory().available) < 512 * MIB
