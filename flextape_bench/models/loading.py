"""Load a Hugging Face causal LM from a Hub id or local directory onto the requested device and dtype."""
from __future__ import annotations

import os

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from flextape_bench.errors import UserError
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.models.layout import layout_for

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("cpu", "cuda", "auto")


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """`auto` is float32 on CPU and bfloat16 (float16 where unsupported) on GPUs."""
    if dtype == "auto":
        if device == "cpu" or not torch.cuda.is_available():
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def check_device(device: str) -> None:
    """Refuse an unknown device, or cuda where torch sees none (checked before a model loads)."""
    if device not in DEVICES:
        raise UserError(f"--device {device!r} is not one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was given but torch sees no CUDA device; use --device cpu (or auto)")


def _device_map(device: str) -> str | dict[str, str]:
    check_device(device)
    if device == "auto":
        return "auto" if torch.cuda.is_available() else {"": "cpu"}
    return {"": device}


def load_model(name: str, location: str, device: str = "cpu", dtype: str = "auto") -> ModelAdapter:
    """Load `location` (Hub id or directory); an unreachable Hub id is one clear UserError."""
    torch_dtype = resolve_dtype(dtype, device)
    device_map = _device_map(device)
    try:
        config = AutoConfig.from_pretrained(location)
        layout = layout_for(config.model_type)
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype, device_map=device_map)
    except (OSError, ValueError) as exc:
        where = "local directory" if os.path.isdir(location) else "Hugging Face Hub id"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"could not load model {name!r} ({where} {location!r}): {reason}. Without network access, download it "
            "elsewhere (huggingface-cli download) and pass the local directory with --model."
        ) from exc
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    revision = getattr(config, "_commit_hash", None) or ""
    return ModelAdapter(name=name, location=location, model=model, tokenizer=tokenizer, layout=layout, revision=revision)
