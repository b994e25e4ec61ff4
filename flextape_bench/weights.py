"""Apply a weight delta for the duration of a block and restore the original weights bit-exactly."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from flextape_bench.editors.base import WeightDelta


@contextmanager
def applied_delta(model: torch.nn.Module, delta: WeightDelta) -> Iterator[None]:
    """Add `delta` to the model's parameters (where each lives); on exit copy the saved originals back."""
    params = {name: model.get_parameter(name) for name in delta}
    originals = {name: p.detach().clone() for name, p in params.items()}
    try:
        with torch.no_grad():
            for name, p in params.items():
                p.add_(delta[name].to(device=p.device, dtype=p.dtype))
        yield
    finally:
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(originals[name])
