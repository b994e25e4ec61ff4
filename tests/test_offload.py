"""Editing a model split by accelerate on the CPU, as `--device spread` places one that does not fit: decoder layers
offloaded to disk (read from the checkpoint, or resaved into an offload folder) or held in CPU memory by offload
hooks (as a GPU machine offloads to the CPU). ft, rome and memit compute the unsplit model's delta, it takes effect,
and every weight comes back bit-exactly (checks in tests/split_checks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate import cpu_offload, dispatch_model
from split_checks import LLAMA_MODULES, check_edit, load_split, save

from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.models.loading import load_model

DEVICE_MAP = {**dict.fromkeys(LLAMA_MODULES, "cpu"), "model.layers.1": "disk", "model.layers.2": "disk"}
EDITED = "model.layers.1.mlp.down_proj.weight"


@pytest.fixture(scope="module")
def saved(tiny_llama, tmp_path_factory) -> Path:
    return save(tiny_llama, tmp_path_factory.mktemp("tiny-llama"))


def _split(kind: str, folder: Path, like: ModelAdapter, offload: Path) -> ModelAdapter:
    if kind == "disk":  # the offloaded weights are read from the checkpoint's safetensors file
        return load_split(folder, like, DEVICE_MAP, offload)
    adapter = load_split(folder, like, {"": "cpu"})
    if kind == "disk-folder":  # resaved into the offload folder, read through memory maps
        dispatch_model(adapter.model, DEVICE_MAP, offload_dir=offload)
    else:  # held in CPU memory by the offload hooks
        for layer in (1, 2):
            cpu_offload(adapter.model.get_submodule(f"model.layers.{layer}"), execution_device="cpu")
    return adapter


@pytest.mark.parametrize("editor", ["ft", "rome", "memit", "mend"])
@pytest.mark.parametrize("kind", ["disk", "disk-folder", "cpu-memory"])
def test_edit_of_an_offloaded_model(tiny_llama, saved, tmp_path, kind, editor):
    split = _split(kind, saved, tiny_llama, tmp_path / "offload")
    assert split.model.get_parameter(EDITED).device.type == "meta"  # the module holds no weight: it is offloaded
    check_edit(tiny_llama, split, editor, tmp_path)


@pytest.mark.parametrize(
    "cpu, placed",
    [
        (
            "1MiB",
            {
                "model.embed_tokens": "cpu",
                "model.layers.0": "cpu",
                "model.layers.1": "disk",
                "model.layers.2": "disk",
                "model.norm": "disk",
                "model.rotary_emb": "disk",
                "lm_head": "disk",
            },
        ),
        ("600KiB", {"": "disk"}),  # not even the embeddings fit (1.2 MB in all)
    ],
)
def test_max_memory_offloads_what_does_not_fit_to_disk(tiny_llama, saved, tmp_path, cpu, placed):
    adapter = load_model(
        "tiny",
        str(saved),
        device="spread",
        dtype="float32",
        max_memory=f"cpu={cpu}",
        offload_folder=tmp_path / "offload",
    )
    assert adapter.model.hf_device_map == placed
    check_edit(tiny_llama, adapter, "rome", tmp_path)
