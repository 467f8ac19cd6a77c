"""What one sandwich-rule step of supernet training is made of (docs/PROTOCOLS.md section 6): the run's
configuration (fixed when it starts, so the cosine schedule and the fidelity snapshots are well
defined), the batch of a step, and the sub-networks a step trains (largest, smallest and seeded
random ones that fit inside the supernet). Everything is a function of (seed, step): a resumed run
is the run that never stopped. numpy only; supernet.py does the training.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import cost
from ..space import SPACES, Arch, as_arch, get_space
from ..validation import check_int, plain_ints

__all__ = ["TrainConfig", "config_of_state", "PEAK_BF16", "peak_flops", "sample_batch", "fits",
           "sample_sub_networks", "step_archs", "monitored_archs"]

# Dense bf16 tensor-core peaks (FLOP/s) used for MFU; a GPU not listed gives MFU = NaN.
PEAK_BF16 = {"H100 80GB HBM3": 989e12, "H100 SXM": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12,
             "H200": 989e12, "A100": 312e12}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    space: str = "s"
    steps: int = 1000                 # planned optimizer steps (fixes schedule and snapshots)
    batch: int = 16                   # sequences per step (each sub-network sees the same batch)
    seq: int | None = None            # sequence length; None = the space's context
    sandwich: int = 4                 # sub-networks per step: largest, smallest, sandwich-2 random;
                                      # 1: the `supernet` arch alone, a standalone network
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup: int = 100                 # linear warm-up steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 100             # steps between validation losses
    eval_batches: int = 8             # validation batches (fixed windows of the val split)
    snapshots: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    supernet: str | None = None       # arch id of the supernet; None = the space's largest
    bf16: bool | None = None          # bf16 autocast; None = on CUDA only (CPU trains in fp32)

    def __post_init__(self):
        plain_ints(self)
        if self.seq is None and isinstance(self.space, str) and self.space in SPACES:
            object.__setattr__(self, "seq", get_space(self.space).block_size)

    def supernet_arch(self):
        sp = get_space(self.space)
        return sp.largest() if self.supernet is None else as_arch(self.supernet, sp)

    def check(self) -> None:
        get_space(self.space)
        cost.check_shape(self.batch, self.seq, self.space)
        for name in ("steps", "sandwich", "eval_every", "eval_batches"):
            check_int(getattr(self, name), name, 1)
        if self.sandwich == 1 and self.supernet is None:
            raise ValueError("sandwich: 1 trains one standalone network; name it with supernet=<arch id>")
        if not (0 <= self.warmup < self.steps):
            raise ValueError(f"warmup: expected 0 <= warmup < steps ({self.steps}), got {self.warmup}")
        if not (0 < self.min_lr <= self.lr):
            raise ValueError(f"min_lr/lr: expected 0 < min_lr <= lr, got {self.min_lr}, {self.lr}")
        if self.grad_clip <= 0 or self.weight_decay < 0:
            raise ValueError("grad_clip: expected > 0; weight_decay: expected >= 0")
        if not self.snapshots or any(not (0 < f <= 1) for f in self.snapshots):
            raise ValueError(f"snapshots: expected fractions in (0, 1], got {self.snapshots}")
        big, small = self.supernet_arch(), get_space(self.space).smallest()
        if self.sandwich > 1 and not fits(small, big):
            raise ValueError(f"supernet: {big.id} does not contain the space's smallest arch {small.id}")

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step `step` (0-based): linear warm-up, then cosine to min_lr."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))

    def snapshot_steps(self) -> dict[int, int]:
        """{percent: step after which that fidelity's weights are saved}."""
        return {int(round(100 * f)): max(1, int(round(f * self.steps))) for f in self.snapshots}


def config_of_state(state: dict) -> TrainConfig:
    unknown = set(state["config"]) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"state.json: config fields {sorted(unknown)} are unknown to this version; "
                         "use a new run_dir")
    return TrainConfig(**{**state["config"], "snapshots": tuple(state["config"]["snapshots"])})


def peak_flops(device_name: str) -> float:
    for key, v in PEAK_BF16.items():
        if key in device_name:
            return v
    return float("nan")


def sample_batch(tokens: np.ndarray, batch: int, seq: int, rng: np.random.Generator):
    """(x, y) int64 arrays (batch, seq) of random windows of a token stream (y = x shifted by one)."""
    n = len(tokens) - seq - 1
    if n < 1:
        raise ValueError(f"tokens: a split of {len(tokens)} tokens is shorter than seq+1 = {seq + 1}")
    starts = rng.integers(0, n, size=batch)
    win = np.stack([np.asarray(tokens[s:s + seq + 1], dtype=np.int64) for s in starts])
    return win[:, :-1], win[:, 1:]


def fits(a: Arch, big: Arch) -> bool:
    """Whether `a` is a sub-network of `big` (the rule of GPT.set_sub_network)."""
    return (a.embed_dim <= big.embed_dim and a.n_layer <= big.n_layer and (big.bias or not a.bias)
            and all(r * a.embed_dim <= R * big.embed_dim and h <= H
                    for r, h, R, H in zip(a.mlp_ratio, a.n_head, big.mlp_ratio, big.n_head)))


def sample_sub_networks(space, big: Arch, n: int, seed) -> list[Arch]:
    """n sub-networks of `big`, each gene uniform over the choices that fit (HW-GPT-Bench's per-gene
    uniform sampling of the space when `big` is the space's largest)."""
    sp = get_space(space)
    if big == sp.largest():
        return sp.sample(n, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        E = int(rng.choice([e for e in sp.embed_dims if e <= big.embed_dim]))
        L = int(rng.choice([v for v in sp.n_layers if v <= big.n_layer]))
        b = bool(rng.choice([v for v in sp.biases if big.bias or not v]))
        r = [int(rng.choice([x for x in sp.mlp_ratios if x * E <= R * big.embed_dim])) for R in big.mlp_ratio[:L]]
        h = [int(rng.choice([x for x in sp.n_heads if x <= H])) for H in big.n_head[:L]]
        out.append(sp.arch(E, L, r, h, b))
    return out


def monitored_archs(cfg: TrainConfig) -> list[Arch]:
    """The networks whose validation loss the training log follows: the supernet and the space's
    smallest (the supernet alone for a standalone network)."""
    big = cfg.supernet_arch()
    return [big] if cfg.sandwich == 1 else [big, get_space(cfg.space).smallest()]


def step_archs(cfg: TrainConfig, step: int):
    """The sandwich of sub-networks of one step: largest, smallest, then seeded random ones (with
    sandwich 1, the one standalone network)."""
    sp = get_space(cfg.space)
    big = cfg.supernet_arch()
    if cfg.sandwich == 1:
        return [big]
    return [big, sp.smallest()] + sample_sub_networks(sp, big, cfg.sandwich - 2,
                                                    np.random.SeedSequence([cfg.seed, step, 2]))
