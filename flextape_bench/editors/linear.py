"""Weight updates written as (out, in) matrices, stored in each architecture's parameter orientation."""

from __future__ import annotations

import torch

from flextape_bench.models.layout import Layout
from flextape_bench.weights import working_dtype


def as_parameter(layout: Layout, update: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """An (out, in) update in the layout of parameter `like` (GPT-2's Conv1D stores (in, out)), on its device, in
    at least float32 whatever the weight's dtype (applying it rounds once, in `weights.applied_delta`)."""
    update = update.T if layout.conv1d else update
    return update.to(device=like.device, dtype=working_dtype(like.dtype))
