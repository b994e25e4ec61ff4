"""`--model-args k=v,...` (lm-evaluation-harness's `--model_args`): keyword arguments for a model's `from_pretrained`,
read and checked before anything loads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flextape_bench.errors import UserError, closest

# key: (the type its value must have, what it does)
MODEL_ARGS: dict[str, tuple[type, str]] = {
    "revision": (str, "branch, tag or commit of a Hub model (default: the main branch)"),
    "subfolder": (str, "folder of the Hub repository or local directory that holds the model and its tokenizer"),
    "trust_remote_code": (bool, "run the model code a repository ships (default false)"),
    "attn_implementation": (str, "attention kernel, e.g. eager or sdpa (default: transformers' choice)"),
}
REPOSITORY_KEYS = ("revision", "subfolder", "trust_remote_code")  # where the files are: config and tokenizer too
NOT_FOR = {  # keys that mean nothing for a kind of model
    "embedded model": REPOSITORY_KEYS,
    "local directory": ("revision",),
    "Hub model": (),
}
SECRET = re.compile(r"token|key|secret|password", re.IGNORECASE)
ELSEWHERE = {  # lm-eval model_args this project takes otherwise
    "pretrained": "give the model with --model",
    "dtype": "give it with --dtype",
    "torch_dtype": "give it with --dtype",
    "device_map": "give the placement with --device",
    "max_memory": "give it with --max-memory",
    "offload_folder": "give it with --offload-folder",
    "peft": "adapters (PEFT) are not supported: the peft package is not installed with this project",
}


def lm_eval_value(text: str) -> bool | int | float | str:
    """A value as lm-eval's `simple_parse_args_string` reads it: true/false (any case) as a bool, digits as an int, a
    float where it parses as one, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.isnumeric():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def parse_model_args(text: str) -> dict[str, Any]:
    """`k=v,...` as a dict; a key that takes text keeps its value as typed (a revision 0123 stays '0123'), any other
    value is read as lm-eval reads it (`lm_eval_value`)."""
    args: dict[str, Any] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (part.strip() for part in entry.partition("="))
        if not sep or not key:
            raise UserError(
                f"{entry.partition('=')[0]!r} is not KEY=VALUE; write e.g. revision=main,attn_implementation=eager"
            )
        kind = MODEL_ARGS.get(key, (object, ""))[0]
        args[key] = value if kind is str else lm_eval_value(value)
    return args


def check_model_args(args: Mapping[str, Any], kind: str) -> None:
    """Refuse a token, a key this project does not pass on (naming the accepted ones), a value of the wrong type,
    or a key that means nothing for this `kind` of model (a key of NOT_FOR)."""
    accepted = ", ".join(sorted(MODEL_ARGS))
    for key, value in args.items():
        if SECRET.search(key):
            raise UserError(
                f"--model-args {key}: never give a token or key on the command line (it would be written to "
                "config.json); set HF_TOKEN in the environment or run `hf auth login`"
            )
        if key in ELSEWHERE:
            raise UserError(f"--model-args {key}: {ELSEWHERE[key]}")
        if key not in MODEL_ARGS:
            close = closest(key, list(MODEL_ARGS))
            hint = f"did you mean {close!r}? " if close else ""
            raise UserError(f"--model-args: unknown key {key!r}; {hint}accepted keys: {accepted}")
        expected = MODEL_ARGS[key][0]
        if not isinstance(value, expected):
            raise UserError(f"--model-args {key}={value!r}: give {'true or false' if expected is bool else 'text'}")
        if key in NOT_FOR[kind]:
            keys = ", ".join(k for k in sorted(MODEL_ARGS) if k not in NOT_FOR[kind])
            raise UserError(f"--model-args {key}: means nothing for the {kind}; it takes {keys}")


def repository_kwargs(args: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the config's and tokenizer's `from_pretrained`: where the files are, and
    trust_remote_code false unless asked."""
    return {"trust_remote_code": False} | {key: args[key] for key in REPOSITORY_KEYS if key in args}
