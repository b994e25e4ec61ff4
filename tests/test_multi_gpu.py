"""Editing a model split over CUDA devices: decoder layers on a second GPU, or offloaded from the GPU to CPU memory or
disk, as `--device spread` places a model that does not fit on one. ft, rome, memit and mend compute the delta of the
same weights on GPU 0, it takes effect, and every weight comes back bit-exactly (checks in tests/split_checks.py).
Skipped without CUDA devices; on a GPU machine: `python -m pytest tests/test_multi_gpu.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from split_checks import LLAMA_MODULES, check_edit, load_split, save

from flextape_bench.models.loading import load_model

GPUS = torch.cuda.device_count()
EDITORS = ["ft", "rome", "memit", "mend"]
SPLITS = {  # layer 1, edited by every editor, is never on GPU 0
    "2-gpus": {**dict.fromkeys(LLAMA_MODULES[:2], 0), **dict.fromkeys(LLAMA_MODULES[2:], 1)},
    "gpu-cpu": {**dict.fromkeys(LLAMA_MODULES, 0), "model.layers.1": "cpu", "model.layers.2": "cpu"},
    "gpu-disk": {**dict.fromkeys(LLAMA_MODULES, 0), "model.layers.1": "disk", "model.layers.2": "disk"},
}
NEEDED = {"2-gpus": 2, "gpu-cpu": 1, "gpu-disk": 1}


@pytest.fixture(scope="module")
def saved(tiny_llama, tmp_path_factory) -> Path:
    return save(tiny_llama, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def on_gpu(tiny_llama, saved):
    """The same weights, all on GPU 0: what the split models must match."""
    if GPUS < 1:
        pytest.skip("needs a CUDA device")
    return load_split(saved, tiny_llama, {"": 0})


@pytest.mark.parametrize("editor", EDITORS)
@pytest.mark.parametrize("split", list(SPLITS))
def test_edit_of_a_model_split_over_devices(tiny_llama, saved, on_gpu, tmp_path, split, editor):
    if NEEDED[split] > GPUS:
        pytest.skip(f"needs {NEEDED[split]} CUDA devices, torch sees {GPUS}")
    adapter = load_split(saved, tiny_llama, SPLITS[split], tmp_path / "offload")
    check_edit(on_gpu, adapter, editor, tmp_path)


def test_max_memory_spreads_the_model_from_gpu_0(tiny_llama, saved, on_gpu, tmp_path):
    # room on GPU 0 for the embeddings and about one decoder layer: the rest goes to CPU memory
    adapter = load_model(
        "tiny",
        str(saved),
        device="spread",
        dtype="float32",
        max_memory="0=1MiB,cpu=1GiB",
        offload_folder=tmp_path / "offload",
    )
    placed = adapter.model.hf_device_map
    assert placed["model.embed_tokens"] == 0 and placed["model.layers.1"] == "cpu", placed
    check_edit(on_gpu, adapter, "rome", tmp_path)
