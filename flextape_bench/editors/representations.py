"""A module's input or output at the subject's last token, averaged over context templates (ROME/MEMIT keys)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from flextape_bench.cases import EditRequest
from flextape_bench.editors.hooks import capture, stop_after_layer
from flextape_bench.editors.subject import encode, fill
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.weights import working_dtype


@torch.no_grad()
def at_subject(
    adapter: ModelAdapter,
    requests: Sequence[EditRequest],
    layer: int,
    module_path: str,
    templates: Sequence[str],
    kind: str,
) -> torch.Tensor:
    """(n, d), at least float32: per request, the mean over `templates` of module `module_path`'s `kind` ("input" or
    "output") at the subject's last token of the template-wrapped prompt. The module is in decoder layer `layer`;
    the layers above it are not run."""
    items = [fill(t.replace("{}", r.prompt, 1), r.subject) for r in requests for t in templates]
    batch = encode(adapter.tokenizer, items, adapter.input_device)
    store: dict[str, torch.Tensor] = {}
    layers = adapter.layout.layer_list(adapter.model)
    with capture(adapter.model.get_submodule(module_path), store), stop_after_layer(layers, layer):
        adapter.body_hidden(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    values = store[kind]
    picked = values[torch.arange(len(items), device=values.device), batch.subject_index.to(values.device)]
    picked = picked.to(working_dtype(picked.dtype))
    return picked.view(len(requests), len(templates), -1).mean(dim=1)


def at_subject_by_type(
    adapter: ModelAdapter,
    requests: Sequence[EditRequest],
    layer: int,
    module_path: str,
    groups: Sequence[Sequence[str]],
    kind: str,
) -> torch.Tensor:
    """(n, d): MEMIT's keys (compute_ks): `at_subject` averaged within each template type, then across types,
    so that the bare prompt's type weighs as much as all sampled templates together."""
    return torch.stack([at_subject(adapter, requests, layer, module_path, group, kind) for group in groups]).mean(0)
