"""Forward hooks on the modules a `Layout` names: read a module's input/output, add vectors to its output, start
a decoder stack at a layer whose input was computed before, or leave out the layers above the one read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def _hidden(output):
    """The hidden-state tensor of a module output (decoder layers may return a tuple)."""
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def capture(
    module: nn.Module, store: dict[str, torch.Tensor], track_output: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the module's (first) input and (hidden-state) output of the next forward passes into `store`.

    With `track_output`, the output joins the autograd graph even when no parameter needs a gradient, so that
    the gradient of a loss with respect to it can be taken (under `torch.enable_grad()`).
    """

    def hook(_module, inputs, output):
        store["input"] = inputs[0]
        store["output"] = _hidden(output)
        if track_output and not store["output"].requires_grad:
            store["output"].requires_grad_(True)

    handle = module.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


@contextmanager
def add_at_positions(
    module: nn.Module, rows: torch.Tensor, positions: torch.Tensor, vectors: torch.Tensor
) -> Iterator[None]:
    """Add `vectors[i]` to the module's output at (rows[i], positions[i]) (differentiably)."""

    def hook(_module, _inputs, output):
        hidden = _hidden(output)
        index = (rows.to(hidden.device), positions.to(hidden.device))
        edited = hidden.index_put(index, hidden[index] + vectors.to(hidden.device, hidden.dtype))
        return (edited, *output[1:]) if isinstance(output, tuple) else edited

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def add_linear_update(
    module: nn.Module, update: torch.Tensor, conv1d: bool = False, bias: torch.Tensor | None = None
) -> Iterator[None]:
    """Run `module` (a linear map) as if its weight were W + `update` (and its bias b + `bias`), differentiably in
    both: adds `update @ x` (+ `bias`) to its output, on the output's device (wherever W lives, offloaded too).
    `update` is stored like the weight ((out, in), or (in, out) for GPT-2's Conv1D)."""

    def hook(_module, inputs, output):
        x, change = inputs[0].to(output.device), update.to(output.device, output.dtype)
        output = output + (x @ change if conv1d else x @ change.T)
        return output if bias is None else output + bias.to(output.device, output.dtype)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class _PassThrough(nn.Module):
    """Stands in for a decoder layer that need not run: returns the hidden states it is given."""

    def forward(self, hidden_states: torch.Tensor, *_args, **_kwargs) -> torch.Tensor:
        return hidden_states


@contextmanager
def start_at_layer(layers: nn.ModuleList, first: int, hidden: torch.Tensor) -> Iterator[None]:
    """Make the stack's next forward passes start at layer `first` from `hidden`, that layer's input as computed
    before: the layers below pass their input through unchanged and layer `first` receives `hidden` instead.

    The stack's own forward still builds the attention masks and position embeddings from the batch it is given, so
    `hidden` must have that batch's rows and length.
    """
    below = [layers[i] for i in range(first)]

    def substitute(_module, args, kwargs):
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    for i in range(first):
        layers[i] = _PassThrough()
    handle = layers[first].register_forward_pre_hook(substitute, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
        for i, layer in enumerate(below):
            layers[i] = layer


@contextmanager
def stop_after_layer(layers: nn.ModuleList, last: int) -> Iterator[None]:
    """Make the stack's next forward passes skip the layers above `last`: they pass their input through unchanged,
    so what layers 0..`last` compute (read with `capture`) costs only their share of the pass; the stack's output is
    then not the model's."""
    above = {i: layers[i] for i in range(last + 1, len(layers))}
    for i in above:
        layers[i] = _PassThrough()
    try:
        yield
    finally:
        for i, layer in above.items():
            layers[i] = layer
