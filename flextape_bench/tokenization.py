"""The token boundary between a prompt and a target continuation, shared by scoring and editors.

A target's tokens are exactly those it contributes to `tokenizer(prompt + " " + target)`: found from character
offsets (a token belongs to the target when its span reaches past the prompt), never by counting tokens of the
target encoded alone. BOS and other special tokens stay in the context.
"""
from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from flextape_bench.errors import UserError


class EmptyTargetError(UserError):
    """A target that contributes no token after its prompt."""


@dataclass(frozen=True)
class Continuation:
    context: tuple[int, ...]  # token ids before the target (BOS included where the tokenizer adds one)
    target: tuple[int, ...]  # token ids the target contributes


def join(prompt: str, target: str) -> str:
    return f"{prompt} {target}"


def encode_continuation(tokenizer: PreTrainedTokenizerBase, prompt: str, target: str) -> Continuation:
    """Split `tokenizer(prompt + " " + target)` into the prompt's tokens and the target's tokens."""
    if not target.strip():
        raise EmptyTargetError(f"empty target after prompt {prompt!r}; fix the target in the data file or the "
                               "task's templates.target")
    if not tokenizer.is_fast:
        raise UserError(
            f"tokenizer {type(tokenizer).__name__} gives no character offsets; load the model's fast tokenizer"
        )
    encoding = tokenizer(join(prompt, target), return_offsets_mapping=True)
    ids, offsets = encoding["input_ids"], encoding["offset_mapping"]
    special = set(tokenizer.all_special_ids)
    boundary = len(prompt)
    first = next(
        (i for i, (tok, (_, end)) in enumerate(zip(ids, offsets)) if end > boundary and tok not in special),
        len(ids),
    )
    # special tokens are no target (an EOS a tokenizer appends); a target whose tokens reach none of its own
    # characters, past the joining space, tokenizes to nothing (a lone "▁" is all that is left of a target made of
    # special tokens or of characters the tokenizer drops)
    kept = [(tok, end) for tok, (_, end) in zip(ids[first:], offsets[first:]) if tok not in special]
    if not any(end > boundary + 1 for _, end in kept):
        name = type(tokenizer).__name__ + (f" ({tokenizer.name_or_path})" if tokenizer.name_or_path else "")
        raise EmptyTargetError(f"target {target!r} after prompt {prompt!r} tokenizes to nothing (special tokens "
                               f"and dropped characters do not count) with the tokenizer {name}; fix the target in "
                               "the data file or the task's templates.target")
    return Continuation(tuple(ids[:first]), tuple(tok for tok, _ in kept))
