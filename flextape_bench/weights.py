"""Read the weights forward passes use, and apply a weight delta for the duration of a block, restoring the original
weights bit-exactly. Both work wherever a weight lives: in its module on any device, or offloaded by accelerate to
CPU memory or disk (`device_map` with "cpu"/"disk" entries), where the module holds a meta tensor and an
`AlignDevicesHook` loads the real one from its `weights_map` before each forward pass."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from accelerate.hooks import AlignDevicesHook

WeightDelta = dict[str, torch.Tensor]  # parameter name -> additive change, on the parameter's device


def _site(model: torch.nn.Module, name: str) -> tuple[torch.Tensor, AlignDevicesHook | None, str]:
    """The tensor module-side for parameter or buffer `name`; for an offloaded one (a meta tensor) also the accelerate
    hook that loads it before each forward and its key in the hook's weights_map (hook None otherwise)."""
    path, _, leaf = name.rpartition(".")
    tensor = getattr(model.get_submodule(path), leaf)
    if tensor.device.type != "meta":
        return tensor, None, name
    parts = path.split(".") if path else []
    for depth in range(len(parts), -1, -1):  # the module's own hook first, then an ancestor's that places submodules
        hook = getattr(model.get_submodule(".".join(parts[:depth])), "_hf_hook", None)
        for candidate in getattr(hook, "hooks", [hook]):  # a SequentialHook holds several
            if (
                isinstance(candidate, AlignDevicesHook)
                and candidate.offload
                and candidate.weights_map is not None
                and (depth == len(parts) or candidate.place_submodules)
            ):
                return tensor, candidate, ".".join([*parts[depth:], leaf])
    raise RuntimeError(
        f"{name} is on the meta device and no accelerate offload hook loads it: the model's weights were not all loaded"
    )


def read_tensor(model: torch.nn.Module, name: str) -> torch.Tensor:
    """Parameter or buffer `name` as forward passes see it, detached: the module's tensor where it lives, or an
    offloaded one's value from its hook's weights_map (with any `applied_delta` in force)."""
    tensor, hook, key = _site(model, name)
    return tensor.detach() if hook is None else hook.weights_map[key]


def execution_device(model: torch.nn.Module, name: str) -> torch.device:
    """The device forward passes compute with tensor `name` on: its own, or an offloaded one's execution device."""
    tensor, hook, _ = _site(model, name)
    return tensor.device if hook is None else torch.device(hook.execution_device)


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype editors compute in for weights of `dtype`: at least float32 (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def added(weight: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """weight + change computed in at least float32 and rounded once to the weight's dtype (a float32 change to a
    bfloat16 weight is not rounded to bfloat16 first)."""
    wide = working_dtype(weight.dtype)
    return (weight.to(wide) + change.to(device=weight.device, dtype=wide)).to(weight.dtype)


def unrepresented_share(model: torch.nn.Module, delta: WeightDelta) -> float:
    """Among the entries `delta` changes, the share that the weights' dtype cannot represent: rounding
    weight + change to that dtype gives the weight back (0 for float32 weights and float32 changes)."""
    lost = changed = 0
    for name, change in delta.items():
        weight = read_tensor(model, name)
        moved = change.to(weight.device) != 0
        lost += int((moved & (added(weight, change) == weight)).sum())
        changed += int(moved.sum())
    return lost / changed if changed else 0.0


@contextmanager
def applied_delta(model: torch.nn.Module, delta: WeightDelta) -> Iterator[None]:
    """Add `delta` to the model's weights where forward passes read them; on exit put the originals back bit-exactly,
    also when the block fails.

    A weight its module holds is changed in place (on its device) and copied back from a saved clone. An offloaded
    weight is never written: its hook's weights_map is overlaid with the edited tensor (original + change, on the
    device the map gives it) and the hook gets its own map back on exit."""
    held: dict[str, torch.Tensor] = {}
    overlays: dict[AlignDevicesHook, dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        for name, change in delta.items():
            tensor, hook, key = _site(model, name)
            if hook is None:
                held[name] = tensor
            else:
                value = hook.weights_map[key]
                overlays.setdefault(hook, {})[key] = added(value, change)
        originals = {name: p.detach().clone() for name, p in held.items()}
    maps = {hook: hook.weights_map for hook in overlays}
    try:
        with torch.no_grad():
            for name, p in held.items():
                p.copy_(added(p, delta[name]))
        for hook, edited in overlays.items():
            hook.weights_map = ChainMap(edited, maps[hook])
        yield
    finally:
        with torch.no_grad():
            for name, p in held.items():
                p.copy_(originals[name])
        for hook, original in maps.items():
            hook.weights_map = original
