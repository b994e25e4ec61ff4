"""MEND (Mitchell et al. 2022): a trained editor network maps the fine-tuning gradient of an edit to a weight change.

The gradient of the edit loss with respect to a linear layer's weight is a sum of rank-one terms, one per token:
dL/dW = sum_t delta_t u_t^T, with u_t the layer's input and delta_t the loss gradient at its output. MEND never forms
dL/dW: for each token it normalises u_t and delta_t (running statistics frozen after training), passes
z_t = [u_t; delta_t] through a small network g, splits g(z_t) into (u~_t, delta~_t) and edits
W <- W - alpha * sum_t delta~_t u~_t^T with a learned step size alpha per layer. g is the paper's low-rank residual
MLP, identity at initialisation:
    h = z + relu(s1 * (U1 V1 z + b1) + o1),   g(z) = h + s2 * (U2 V2 h + b2) + o2
one network per weight shape, shared by the layers of that shape, with a per-layer scale s and offset o (the output
layer is linear, as in the authors' release). Training (`flextape-bench train-mend`, editors/mend_train.py) fits g
and alpha so that the edited model predicts the new target after rephrased edit prompts while keeping its
predictive distribution on unrelated text (KL). This module holds the network, its checkpoints and the editor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from flextape_bench.cases import EditRequest
from flextape_bench.checksums import DamagedFile, load_torch, save_torch, sha256_file, sums_file
from flextape_bench.editors.base import Editor, EditorContext, Layer, at_least_zero, corpus, positive, spec_field
from flextape_bench.editors.hooks import add_linear_update, capture
from flextape_bench.editors.linear import as_parameter
from flextape_bench.editors.nll import TeacherForced, batch_nll, teacher_forced
from flextape_bench.errors import UserError
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.weights import WeightDelta, read_tensor

CHECKPOINT_FORMAT = "flextape-bench/mend/1"


@dataclass(frozen=True)
class MENDHparams:
    layers: list[Layer] = spec_field("layers whose MLP input and output projections are edited", nonempty=True)
    rank: int = spec_field("rank of U V in the editor network", check=positive)
    steps: int = spec_field("training steps", check=positive)
    lr: float = spec_field("Adam learning rate of the editor network", check=positive)
    edit_lr: float = spec_field("initial step size alpha of every edited layer", check=positive)
    lr_lr: float = spec_field("Adam learning rate of the step sizes", check=at_least_zero)
    c_edit: float = spec_field("weight of the edit loss against the locality KL", check=positive)
    c_loc: float = spec_field("weight of the locality KL", check=at_least_zero)
    train_batch_size: int = spec_field("edit requests per training step", check=positive)
    loc_batch_size: int = spec_field("unrelated texts per training step", check=positive)
    loc_corpus: str = spec_field(
        "the unrelated texts: wikipedia | model | file:PATH (as the key statistics' corpora)",
        default="model",
        check=corpus,
    )
    loc_n_samples: int = spec_field("unrelated texts in all", default=256, check=positive)
    loc_max_tokens: int = spec_field("tokens per unrelated text", default=64, check=positive)
    loc_positions: int = spec_field(
        "token positions per step at which the locality KL is evaluated", default=64, check=positive
    )
    context_template_count: int = spec_field(
        "rephrasings of an edit prompt for the edit loss: sampled prefixes", default=5, check=at_least_zero
    )
    context_template_length: int = spec_field("new tokens per sampled prefix", default=10, check=positive)
    grad_clip: float = spec_field("gradient norm clip of the editor network", default=100.0, check=positive)
    val_size: int = spec_field(
        "training requests held out to report efficacy after training", default=32, check=positive
    )
    checkpoint: str = spec_field(
        "trained editor; empty: the default path for the model's weights in the cache", default=""
    )


@dataclass(frozen=True)
class EditedModule:
    """A linear layer MEND edits: its weight's parameter name, module path and (in, out) sizes."""

    weight: str
    module: str
    d_in: int
    d_out: int

    @property
    def shape_key(self) -> str:
        return f"{self.d_in}x{self.d_out}"


def edited_modules(adapter: ModelAdapter, layers: Sequence[int]) -> list[EditedModule]:
    """The MLP input and output projections of `layers` (for gated MLPs the up projection; the gate is left)."""
    layout, model = adapter.layout, adapter.model
    n = layout.num_layers(model)
    bad = [layer for layer in layers if not -n <= layer < n]
    if bad:
        raise UserError(f"MEND layers {bad} do not exist: the model has {n} layers (0-{n - 1})")
    out = []
    for layer in (layer % n for layer in layers):
        for template in (layout.mlp_in, layout.mlp_out):
            path = layout.layer_path(template, layer)
            weight = model.get_parameter(f"{path}.weight")  # shape only: an offloaded weight's meta tensor has it
            d_in, d_out = (weight.shape[0], weight.shape[1]) if layout.conv1d else (weight.shape[1], weight.shape[0])
            out.append(EditedModule(f"{path}.weight", path, int(d_in), int(d_out)))
    return out


class RunningNorm(nn.Module):
    """Per-dimension running mean and variance (Chan et al.'s parallel update); normalises to zero mean, unit
    variance. Updated only while training."""

    count: torch.Tensor
    mean: torch.Tensor
    m2: torch.Tensor

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(dim, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double().to(self.mean.device)
        n = x.shape[0]
        if n == 0:
            return
        mean = x.mean(0)
        m2 = ((x - mean) ** 2).sum(0)
        total = self.count + n
        shift = mean - self.mean
        self.mean += shift * n / total
        self.m2 += m2 + shift**2 * self.count * n / total
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = self.m2 / (self.count - 1) if self.count > 1 else torch.ones_like(self.m2)
        return (x - self.mean.to(x.dtype)) / torch.sqrt(var.to(x.dtype) + self.eps)


class LowRankResidual(nn.Module):
    """x + act(s_m * (U V x + b) + o_m) for layer mode m; U starts at zero, so the block starts as the identity."""

    def __init__(self, dim: int, rank: int, modes: int, relu: bool):
        super().__init__()
        self.v = nn.Parameter(torch.randn(rank, dim) / dim**0.5)
        self.u = nn.Parameter(torch.zeros(dim, rank))
        self.b = nn.Parameter(torch.zeros(dim))
        self.scale = nn.Parameter(torch.ones(modes, dim))
        self.offset = nn.Parameter(torch.zeros(modes, dim))
        self.relu = relu

    def forward(self, x: torch.Tensor, mode: int) -> torch.Tensor:
        out = self.scale[mode] * ((x @ self.v.T) @ self.u.T + self.b) + self.offset[mode]
        return x + (torch.relu(out) if self.relu else out)


class GradientTransform(nn.Module):
    """g for one weight shape (d_in, d_out), shared by `modes` layers."""

    def __init__(self, d_in: int, d_out: int, rank: int, modes: int):
        super().__init__()
        self.d_in, self.d_out = d_in, d_out
        self.hidden = LowRankResidual(d_in + d_out, rank, modes, relu=True)
        self.output = LowRankResidual(d_in + d_out, rank, modes, relu=False)

    def forward(self, u: torch.Tensor, delta: torch.Tensor, mode: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.output(self.hidden(torch.cat([u, delta], dim=-1), mode), mode)
        return out[:, : self.d_in], out[:, self.d_in :]


def _key(name: str) -> str:
    return name.replace(".", "/")  # module dict keys may not contain dots


class MENDNetwork(nn.Module):
    """The editor networks, input normalisers and step sizes for a list of edited modules."""

    def __init__(self, modules: Sequence[EditedModule], rank: int, edit_lr: float):
        super().__init__()
        self.targets = list(modules)
        shapes: dict[str, list[EditedModule]] = {}
        for m in self.targets:
            shapes.setdefault(m.shape_key, []).append(m)
        self.mode = {m.weight: group.index(m) for group in shapes.values() for m in group}
        self.transforms = nn.ModuleDict(
            {key: GradientTransform(g[0].d_in, g[0].d_out, rank, len(g)) for key, g in shapes.items()}
        )
        self.u_norms = nn.ModuleDict({_key(m.weight): RunningNorm(m.d_in) for m in self.targets})
        self.delta_norms = nn.ModuleDict({_key(m.weight): RunningNorm(m.d_out) for m in self.targets})
        self.step_sizes = nn.ParameterDict(
            {_key(m.weight): nn.Parameter(torch.tensor(float(edit_lr))) for m in self.targets}
        )

    def updates(self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Per module, the weight change -alpha * sum_t delta~_t u~_t^T as an (out, in) matrix. In training mode the
        normalisers first absorb the factors' statistics."""
        out = {}
        for m in self.targets:
            u, delta = factors[m.weight]
            u_norm = cast(RunningNorm, self.u_norms[_key(m.weight)])  # a ModuleDict's items are typed as Module
            delta_norm = cast(RunningNorm, self.delta_norms[_key(m.weight)])
            if self.training:
                u_norm.update(u)
                delta_norm.update(delta)
            step = self.step_sizes[_key(m.weight)]  # the network's device and dtype (factors come from each layer's)
            u_t, delta_t = self.transforms[m.shape_key](
                u_norm(u.to(step.device, step.dtype)),
                delta_norm(delta.to(step.device, step.dtype)),
                self.mode[m.weight],
            )
            out[m.weight] = -step * (delta_t.T @ u_t)
        return out


def gradient_factors(
    adapter: ModelAdapter, modules: Sequence[EditedModule], batch: TeacherForced
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per module, the rank-one factors of the edit gradient: its inputs u_t and the gradients delta_t of the summed
    per-request target NLL at its outputs, at every position the NLL depends on. dL/dW = delta^T u."""
    stores: dict[str, dict[str, torch.Tensor]] = {m.weight: {} for m in modules}
    with ExitStack() as stack, torch.enable_grad():
        for m in modules:
            stack.enter_context(capture(adapter.model.get_submodule(m.module), stores[m.weight], track_output=True))
        loss = batch_nll(adapter, batch).sum()  # summed: one request's gradient does not depend on the batch size
        grads = torch.autograd.grad(loss, [stores[m.weight]["output"] for m in modules])
    keep = batch.predicting
    return {
        m.weight: (
            stores[m.weight]["input"][keep.to(stores[m.weight]["input"].device)].detach().float(),
            grad[keep.to(grad.device)].detach().float(),
        )
        for m, grad in zip(modules, grads)
    }


@contextmanager
def applied_updates(adapter: ModelAdapter, updates: dict[str, torch.Tensor]) -> Iterator[None]:
    """Run the model as if each (out, in) update were added to its weight, differentiably in the updates."""
    with ExitStack() as stack:
        for weight, update in updates.items():
            module = adapter.model.get_submodule(weight.rsplit(".", 1)[0])
            like = read_tensor(adapter.model, weight)
            stack.enter_context(
                add_linear_update(module, as_parameter(adapter.layout, update, like), adapter.layout.conv1d)
            )
        yield


def request_key(request: EditRequest) -> str:
    """Identity of an edit request, for checking that evaluation never uses an edit MEND was trained on."""
    return hashlib.sha256(json.dumps([request.prompt, request.subject, request.target_new]).encode()).hexdigest()[:24]


def default_checkpoint(cache: Path, weights: str) -> Path:
    return cache / "mend" / f"{weights[:32]}.pt"


def save_checkpoint(
    path: Path,
    network: MENDNetwork,
    hparams: MENDHparams,
    weights: str,
    model: str,
    trained: Sequence[str],
    record: dict[str, Any],
) -> None:
    """Write the checkpoint atomically, with its checksum file: networks, normalisers, step sizes, what they were
    trained for and on."""
    save_torch(
        path,
        {
            "format": CHECKPOINT_FORMAT,
            "weights_blake2b": weights,
            "model": model,
            "modules": [asdict(m) for m in network.targets],
            "hparams": asdict(hparams),
            "state": network.state_dict(),
            "trained_requests": sorted(trained),
            "record": record,
        },
    )


def load_checkpoint(path: Path, weights: str) -> tuple[MENDNetwork, dict[str, Any]]:
    """The trained network (eval mode) and the checkpoint's metadata; refuses a checkpoint of other weights."""
    if not path.is_file():
        raise UserError(
            f"no MEND checkpoint at {path}: train one with `flextape-bench train-mend --model MODEL` "
            "(or pass --hparams checkpoint=PATH)"
        )
    try:
        data = load_torch(path, map_location="cpu", weights_only=True)
    except DamagedFile as exc:
        raise UserError(
            f"MEND checkpoint {exc}; retrain it with `flextape-bench train-mend` (a checkpoint you trust "
            f"from before checksums: sha256sum {path} > {sums_file(path)})"
        ) from exc
    except Exception as exc:
        raise UserError(
            f"MEND checkpoint {path} cannot be read ({type(exc).__name__}); retrain it with `flextape-bench train-mend`"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a flextape-bench MEND checkpoint ({CHECKPOINT_FORMAT})")
    if data["weights_blake2b"] != weights:
        raise UserError(
            f"MEND checkpoint {path} was trained for other weights ({data['model']}, "
            f"blake2b {data['weights_blake2b'][:12]}...) than the loaded model ({weights[:12]}...); "
            "train one for this model with `flextape-bench train-mend`"
        )
    modules = [EditedModule(**m) for m in data["modules"]]
    network = MENDNetwork(modules, data["hparams"]["rank"], data["hparams"]["edit_lr"])
    network.load_state_dict(data["state"])
    return network.eval(), data


class MENDEditor(Editor[MENDHparams]):
    """Applies a trained MEND checkpoint: one forward and backward pass per batch of edits, no optimisation."""

    def __init__(self, adapter: ModelAdapter, hparams: MENDHparams, context: EditorContext):
        super().__init__(adapter, hparams, context)
        given = hparams.checkpoint
        self.path = Path(given) if given else default_checkpoint(context.cache, context.weights)
        self.network, self.metadata = load_checkpoint(self.path, context.weights)
        self.network.to(adapter.input_device)
        self.trained = set(self.metadata["trained_requests"])

    def declared_parameters(self) -> list[str]:
        return [m.weight for m in self.network.targets]

    def compute_delta(self, requests: Sequence[EditRequest]) -> WeightDelta:
        seen = [r.case_id for r in requests if request_key(r) in self.trained]
        if seen:
            raise UserError(
                f"MEND checkpoint {self.path} was trained on the edits of case(s) {seen[:10]}; evaluate "
                "on held-out cases (train-mend --holdout N holds out each task's first N cases)"
            )
        batch = teacher_forced(
            self.adapter, [r.prompt.replace("{}", r.subject) for r in requests], [r.target_new for r in requests]
        )
        factors = gradient_factors(self.adapter, self.network.targets, batch)
        with torch.no_grad():
            updates = self.network.updates(factors)
        return {
            name: as_parameter(self.adapter.layout, update, read_tensor(self.adapter.model, name))
            for name, update in updates.items()
        }

    @cached_property
    def checkpoint_digest(self) -> str | None:
        return sha256_file(self.path)

    def run_record(self) -> dict[str, Any]:
        """The checkpoint by content (its path is in the hparams when given; the default one lies in the cache,
        which would make config.json depend on where the cache is)."""
        return {"checkpoint_sha256": self.checkpoint_digest, "training": self.metadata["record"]}
