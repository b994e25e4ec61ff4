"""Load a Hugging Face causal LM from a Hub id or local directory onto the requested device and dtype."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import convert_file_size_to_int
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from flextape_bench.errors import UserError
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.models.layout import layout_for
from flextape_bench.models.model_args import repository_kwargs

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("auto", "cpu", "cuda", "spread")
logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """`auto`: cuda where torch sees a CUDA device, else cpu, said on stderr; any other device as it is."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        logger.info("device: cuda (auto: torch sees a CUDA device)")
        return "cuda"
    logger.info("device: cpu (auto: torch sees no CUDA device)")
    return "cpu"


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """`auto` is float32 on every device: the precision the editing papers ran in, and the one in which small
    updates (FT-L's 5e-5 L-inf step, MEMIT's deltas) are not rounded away. bfloat16 / float16 are opt-in."""
    if dtype == "auto":
        return torch.float32
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def parse_max_memory(text: str) -> dict[int | str, int]:
    """`--max-memory 0=20GiB,1=20GiB,cpu=60GiB` as accelerate's `max_memory` (GPU index or "cpu" -> bytes); sizes are
    bytes or a number with KiB/MiB/GiB or KB/MB/GB."""
    limits: dict[int | str, int] = {}
    for entry in text.split(","):
        key, sep, size = (part.strip() for part in entry.partition("="))
        if not sep or not key or not size:
            raise UserError(
                f"--max-memory {text!r}: {entry.strip()!r} is not DEVICE=SIZE; write e.g. 0=20GiB,cpu=60GiB"
            )
        if key != "cpu" and not key.isdigit():
            raise UserError(f"--max-memory {text!r}: device {key!r} is neither a GPU index (0, 1, ...) nor cpu")
        if key.isdigit() and int(key) >= torch.cuda.device_count():
            raise UserError(
                f"--max-memory {text!r}: there is no GPU {key} (torch sees {torch.cuda.device_count()} CUDA device(s))"
            )
        try:
            limits[int(key) if key.isdigit() else key] = int(size) if size.isdigit() else convert_file_size_to_int(size)
        except ValueError:
            raise UserError(
                f"--max-memory {text!r}: size {size!r} of {key} is not bytes or a number with a unit "
                "(KiB, MiB, GiB, KB, MB, GB)"
            ) from None
    return limits


def check_device(device: str, max_memory: str | None = None, offload_folder: Path | None = None) -> None:
    """Refuse an unknown device, cuda where torch sees none, or a bad placement option (checked before a model
    loads); creates the offload folder."""
    if device not in DEVICES:
        raise UserError(f"--device {device!r} is not one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "--device cuda was given but torch sees no CUDA device; use --device cpu (or auto, the default)"
        )
    if (max_memory or offload_folder) and device != "spread":
        raise UserError(
            f"--max-memory and --offload-folder place a model over devices: they need --device spread "
            f"(got --device {device})"
        )
    if max_memory:
        parse_max_memory(max_memory)
    if offload_folder:
        try:
            offload_folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise UserError(f"--offload-folder {offload_folder} is a file, not a directory") from None
        except OSError as exc:
            raise UserError(f"--offload-folder {offload_folder}: cannot create it ({exc.strerror or exc})") from exc


def _device_map(device: str, max_memory: dict[int | str, int] | None) -> str | dict[str, str]:
    """accelerate's `device_map` of a resolved device (spread: accelerate's own placement, "auto")."""
    if device == "spread":
        return "auto" if torch.cuda.is_available() or max_memory else {"": "cpu"}
    return {"": device}


def _check_chat_template(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Refuse --apply-chat-template for a tokenizer without a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"--apply-chat-template: the tokenizer of model {name!r} has no chat template (base models usually "
            "have none); leave the flag out, or give a chat model"
        )


def load_model(
    name: str,
    location: str,
    device: str = "cpu",
    dtype: str = "auto",
    max_memory: str | None = None,
    offload_folder: Path | None = None,
    model_args: Mapping[str, Any] | None = None,
    chat_template: bool = False,
    hparams_family: str | None = None,
) -> ModelAdapter:
    """Load `location` (Hub id or directory); an unreachable Hub id is one clear UserError. `device` auto is cuda
    where torch sees one, else cpu (`resolve_device`); with spread, accelerate places the layers over the GPUs, then
    CPU memory, then disk (`max_memory` caps each device, `offload_folder` holds weights offloaded to disk that are
    not already in a safetensors file). `model_args`: --model-args (checked by `check_model_args`) for
    `from_pretrained`; `chat_template`: score and generate through the tokenizer's chat template (refused before
    the weights load where it has none); `hparams_family`: the editors' hyperparameter files, where the model has
    its own (`layout_for`)."""
    device = resolve_device(device)
    check_device(device, max_memory, offload_folder)
    torch_dtype = resolve_dtype(dtype, device)
    limits = parse_max_memory(max_memory) if max_memory else None
    device_map = _device_map(device, limits)
    model_args = dict(model_args or {})
    repository = repository_kwargs(model_args)
    try:
        config = AutoConfig.from_pretrained(location, **repository)
        layout = layout_for(config.model_type, hparams_family)
        tokenizer = AutoTokenizer.from_pretrained(location, **repository)
        if chat_template:
            _check_chat_template(tokenizer, name)
        model = AutoModelForCausalLM.from_pretrained(
            location,
            dtype=torch_dtype,
            device_map=device_map,
            max_memory=limits,
            offload_folder=offload_folder,
            **(repository | model_args),
        )
    except (OSError, ValueError) as exc:
        where = "local directory" if os.path.isdir(location) else "Hugging Face Hub id"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"could not load model {name!r} ({where} {location!r}): {reason}. Without network access, download it "
            "elsewhere (hf download) and pass the local directory with --model."
        ) from exc
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    revision = getattr(config, "_commit_hash", None) or ""
    return ModelAdapter(
        name=name,
        location=location,
        model=model,
        tokenizer=tokenizer,
        layout=layout,
        revision=revision,
        device=device,
        model_args=model_args,
        chat_template=chat_template,
    )
