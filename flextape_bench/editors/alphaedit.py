"""AlphaEdit (Fang et al., ICLR 2025): MEMIT with the update projected onto the null space of preserved knowledge.

P projects onto the eigenvectors of C = E[k k^T] (keys of general text) whose eigenvalues are below
`nullspace_threshold`, so the update leaves those keys' outputs (nearly) unchanged. With K the edit keys and R the
residuals, the update's transpose solves (P (K_p^T K_p + K^T K) + L2 I) X = P K^T R (the paper's
dW = R K^T P (K_p K_p^T P + K K^T P + L2 I)^-1), whose solution lies in the null space. K_p holds the keys of the
edits kept earlier in a sequential run (none otherwise), so that a new edit also leaves them in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from flextape_bench.editors.base import EditorContext, positive, spec_field
from flextape_bench.editors.memit import LayerRangeEditor, LayerRangeHparams
from flextape_bench.models.adapter import ModelAdapter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlphaEditHparams(LayerRangeHparams):
    nullspace_threshold: float = spec_field(
        "key directions with a second moment below it are preserved", check=positive
    )
    L2: float = spec_field("weight of the update's norm in the projected least squares", check=positive)


def null_space_projector(cov: torch.Tensor, threshold: float) -> torch.Tensor:
    """U U^T over the eigenvectors of the symmetric `cov` with eigenvalue below `threshold`."""
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    basis = eigenvectors[:, eigenvalues < threshold]
    return basis @ basis.T


class AlphaEditEditor(LayerRangeEditor[AlphaEditHparams]):
    def __init__(self, adapter: ModelAdapter, hparams: AlphaEditHparams, context: EditorContext):
        super().__init__(adapter, hparams, context)
        self.previous: dict[int, torch.Tensor] = {}  # layer -> K_p^T K_p of the kept edits
        self.last: dict[int, torch.Tensor] = {}  # layer -> K^T K of the last computed edit

    def start_sequence(self) -> None:
        self.previous = {}

    def keep_last(self) -> None:
        for layer, gram in self.last.items():
            self.previous[layer] = self.previous.get(layer, 0) + gram

    def solve(self, layer: int, cov: torch.Tensor, keys: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
        projector = null_space_projector(cov, self.hparams.nullspace_threshold)
        if not projector.any():
            log.warning(
                "AlphaEdit: no key direction of layer %d has a second moment below nullspace_threshold=%s; "
                "this layer is left unchanged (raise the threshold to edit it)",
                layer,
                self.hparams.nullspace_threshold,
            )
        eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        self.last[layer] = keys.T @ keys
        gram = self.last[layer] + self.previous.get(layer, torch.zeros_like(cov)).to(cov.device)
        return torch.linalg.solve(projector @ gram + self.hparams.L2 * eye, projector @ keys.T @ resid)
