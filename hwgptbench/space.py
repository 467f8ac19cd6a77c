"""Search spaces s, m, l and the immutable architecture type.

An architecture is global (embedding size E, depth L, bias) plus one MLP ratio and one head count
per layer. It round-trips losslessly through three formats: HW-GPT-Bench's dict, HW-GPT-Bench's
string id, and a fixed-length integer feature row per space (for surrogates and optimizers).
Everything here is numpy-only so the query path never needs torch.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property

import numpy as np

from .features import FeatureMatrix, check_dtype, check_matrix, encode_archs, encode_ids, is_checked
from .validation import check_int, check_seed

__all__ = ["Arch", "SearchSpace", "FeatureMatrix", "SPACES", "get_space", "as_arch", "as_archs"]

# Column layout of the feature row: E, L, bias, r_0..r_{Lmax-1}, h_0..h_{Lmax-1}; 0 past depth L.
_GLOBAL_COLS = ("embed_dim", "n_layer", "bias")
_SAMPLE_BLOCK = 1 << 17          # rows sampled at a time (bounded memory for 10^6-row samples)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The choices of one space. Per-gene uniform sampling follows HW-GPT-Bench."""

    name: str
    embed_dims: tuple[int, ...]
    n_layers: tuple[int, ...]
    mlp_ratios: tuple[int, ...]
    n_heads: tuple[int, ...]
    biases: tuple[bool, ...] = (True, False)
    vocab_size: int = 50257          # token ids the model reads (GPT-2 BPE: 50256 merges/bytes + EOT)
    block_size: int = 1024           # context length
    tokenizer_ranks: int | None = None  # GPT-2 BPE restricted to its first ranks (corpus.gpt2_encoding)

    @cached_property
    def vocab_padded(self) -> int:
        """Embedding rows: the vocabulary rounded up to a multiple of 64."""
        return -(-self.vocab_size // 64) * 64

    @cached_property
    def max_layers(self) -> int:
        return max(self.n_layers)

    @cached_property
    def n_features(self) -> int:
        return len(_GLOBAL_COLS) + 2 * self.max_layers

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        lm = self.max_layers
        return _GLOBAL_COLS + tuple(f"mlp_ratio_{i}" for i in range(lm)) + tuple(
            f"n_head_{i}" for i in range(lm))

    @property
    def size(self) -> int:
        """Number of distinct architectures (exact integer)."""
        per_layer = len(self.mlp_ratios) * len(self.n_heads)
        return len(self.embed_dims) * len(self.biases) * sum(per_layer ** n for n in self.n_layers)

    # ---- construction helpers -------------------------------------------------------------
    def arch(self, embed_dim, n_layer, mlp_ratio, n_head, bias) -> Arch:
        return Arch(self.name, embed_dim, n_layer, tuple(mlp_ratio), tuple(n_head), bias)

    def largest(self) -> Arch:
        lm = self.max_layers
        return self.arch(max(self.embed_dims), lm, [max(self.mlp_ratios)] * lm,
                         [max(self.n_heads)] * lm, True)

    def smallest(self) -> Arch:
        ln = min(self.n_layers)
        return self.arch(min(self.embed_dims), ln, [min(self.mlp_ratios)] * ln,
                         [min(self.n_heads)] * ln, False)

    # ---- sampling ---------------------------------------------------------------------------
    def sample_features(self, n: int, seed=None, dtype=np.int64) -> np.ndarray:
        """n feature rows, each gene drawn uniformly from its choices (seeded), as a plain writable
        array of `dtype` (np.int16 holds every value: 8x less memory for very large samples).

        Rows are drawn in blocks of 131,072 with one generator, so memory stays bounded; up to one
        block, a draw is exactly what it always was (tests and shipped fronts depend on it).
        """
        n = _check_count(n)
        X = np.empty((n, self.n_features), dtype=check_dtype(dtype, self))
        for start, block in zip(range(0, n, _SAMPLE_BLOCK), self.iter_sample_features(n, seed, dtype)):
            X[start:start + len(block)] = block
        return X

    def iter_sample_features(self, n: int, seed=None, dtype=np.int64):
        """The rows of `sample_features(n, seed)`, block by block (131,072 rows each), so that a
        very large sample can be used without ever being held whole."""
        n = _check_count(n)
        dtype = check_dtype(dtype, self)
        rng = np.random.default_rng(check_seed(seed))
        for start in range(0, n, _SAMPLE_BLOCK):
            block = np.empty((min(_SAMPLE_BLOCK, n - start), self.n_features), dtype=dtype)
            self._sample_block(rng, block)
            yield block

    def _sample_block(self, rng, out: np.ndarray) -> None:
        m, lm, dt = len(out), self.max_layers, out.dtype
        out[:, 0] = rng.choice(np.asarray(self.embed_dims, dt), size=m)
        out[:, 1] = rng.choice(np.asarray(self.n_layers, dt), size=m)
        out[:, 2] = rng.choice(np.asarray(self.biases, dt), size=m)
        dead = np.arange(lm)[None, :] >= out[:, 1:2]
        for off, choices in ((3, self.mlp_ratios), (3 + lm, self.n_heads)):
            block = out[:, off:off + lm]
            block[...] = rng.choice(np.asarray(choices, dt), size=(m, lm))
            block[dead] = 0

    def all_features(self, limit: int = 1_000_000) -> np.ndarray:
        """Every architecture of the space as feature rows (a small space's exact fronts need all of
        them); refused above `limit` rows."""
        import itertools
        if self.size > limit:
            raise ValueError(f"space {self.name!r}: {self.size} architectures, more than limit={limit}")
        lm, rows = self.max_layers, []
        layer = list(itertools.product(self.mlp_ratios, self.n_heads))
        for e, n, b in itertools.product(self.embed_dims, self.n_layers, self.biases):
            for genes in itertools.product(layer, repeat=n):
                r = [g[0] for g in genes] + [0] * (lm - n)
                h = [g[1] for g in genes] + [0] * (lm - n)
                rows.append([e, n, int(b), *r, *h])
        return np.array(rows, dtype=np.int64)

    def sample(self, n: int = 1, seed=None) -> list[Arch]:
        return self.decode(self.sample_features(n, seed=seed))

    # ---- feature rows -----------------------------------------------------------------------
    def features(self, x) -> FeatureMatrix:
        """The one check of architectures given to the cost model, a Benchmark or a surrogate.

        `x`: a feature matrix (n, n_features) or one row, of any integer dtype (kept) or integral
        floats; or one or many Arch objects, HW-GPT-Bench string ids or dicts. Returns a read-only
        `FeatureMatrix` of this space; one that already is one is returned as it is.
        """
        if is_checked(x, self):
            return x
        if isinstance(x, np.ndarray) and x.dtype != object:
            return FeatureMatrix.of_checked(check_matrix(self, x), self)
        if isinstance(x, (Arch, str, Mapping)):
            x = [x]
        if isinstance(x, (list, tuple)) and x:
            if all(type(a) is Arch for a in x):
                return FeatureMatrix.of_checked(encode_archs(self, x), self)
            if len(x) > 64 and all(type(a) is str for a in x):     # parsing in bulk pays off
                X = encode_ids(self, x)
                if X is not None:
                    return FeatureMatrix.of_checked(X, self)
        return FeatureMatrix.of_checked(encode_archs(self, as_archs(x, self)), self)

    def encode(self, archs: Iterable[Arch | str | Mapping]) -> np.ndarray:
        """Feature matrix (n, n_features) of int64 for many architectures (a plain writable copy)."""
        return np.array(self.features(as_archs(archs, self)), dtype=np.int64)

    def validate_features(self, X) -> np.ndarray:
        """Check a feature matrix against the space; return it as a plain writable int64 copy
        (for code that edits rows; `features` gives the read-only checked type)."""
        if not isinstance(X, np.ndarray) or X.dtype == object:
            X = np.asarray(X)
        return np.array(self.features(X), dtype=np.int64)

    def decode(self, X) -> list[Arch]:
        """Architectures of a feature matrix (inverse of encode)."""
        X = self.features(X if isinstance(X, np.ndarray) else np.asarray(X))
        lm = self.max_layers
        return [Arch._trusted(self.name, x[0], x[1], tuple(x[3:3 + x[1]]), tuple(x[3 + lm:3 + lm + x[1]]),
                              bool(x[2])) for x in X.tolist()]

    # ---- local search -------------------------------------------------------------------------
    def neighbours(self, arch) -> list[Arch]:
        """Every architecture that differs in exactly one choice.

        Depth changes: a shallower neighbour drops the last layers; a deeper one repeats the last
        layer's (ratio, heads) for the new layers, so that each depth is exactly one neighbour.
        """
        a = as_arch(arch, self)
        out = []
        for e in self.embed_dims:
            if e != a.embed_dim:
                out.append(dataclasses.replace(a, embed_dim=e))
        for n in self.n_layers:
            if n != a.n_layer:
                extra = n - a.n_layer
                r = a.mlp_ratio[:n] + (a.mlp_ratio[-1],) * max(extra, 0)
                h = a.n_head[:n] + (a.n_head[-1],) * max(extra, 0)
                out.append(self.arch(a.embed_dim, n, r, h, a.bias))
        out.append(dataclasses.replace(a, bias=not a.bias))
        for i in range(a.n_layer):
            for r in self.mlp_ratios:
                if r != a.mlp_ratio[i]:
                    out.append(dataclasses.replace(a, mlp_ratio=_set(a.mlp_ratio, i, r)))
            for h in self.n_heads:
                if h != a.n_head[i]:
                    out.append(dataclasses.replace(a, n_head=_set(a.n_head, i, h)))
        return out


SPACES: dict[str, SearchSpace] = {
    "s": SearchSpace("s", (192, 384, 768), (10, 11, 12), (2, 3, 4), (4, 8, 12)),
    "m": SearchSpace("m", (256, 512, 1024), (22, 23, 24), (2, 3, 4), (8, 12, 16)),
    "l": SearchSpace("l", (320, 640, 1280), (34, 35, 36), (2, 3, 4), (8, 16, 20)),
    # The space whose supernet trains on two CPU cores (benchmarks.md, "The xs space"): GPT-2's BPE
    # restricted to its first 8192 ranks (+ EOT) and a 256-token context keep the LM head from
    # dominating the cost of so small a network.
    "xs": SearchSpace("xs", (64, 128, 256), (2, 3, 4), (2, 3, 4), (1, 2, 4),
                      vocab_size=8193, block_size=256, tokenizer_ranks=8192),
}


def get_space(space) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if not isinstance(space, str):
        raise TypeError(f"space: expected one of {sorted(SPACES)} (str), got {type(space).__name__}")
    try:
        return SPACES[space]
    except KeyError:
        raise ValueError(f"space: unknown space {space!r}; allowed: {sorted(SPACES)}") from None


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture of one space; validated on construction, immutable and hashable."""

    space: str
    embed_dim: int
    n_layer: int
    mlp_ratio: tuple[int, ...]
    n_head: tuple[int, ...]
    bias: bool

    def __post_init__(self):
        sp = get_space(self.space)
        _check_int(self.embed_dim, "embed_dim", sp.embed_dims)
        _check_int(self.n_layer, "n_layer", sp.n_layers)
        if not isinstance(self.bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected a bool (True/False), got {self.bias!r}")
        for name, choices in (("mlp_ratio", sp.mlp_ratios), ("n_head", sp.n_heads)):
            vals = getattr(self, name)
            if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence):
                raise TypeError(f"{name}: expected a list of {self.n_layer} ints from {list(choices)}")
            if len(vals) != self.n_layer:
                raise ValueError(f"{name}: expected {self.n_layer} entries (one per layer), got {len(vals)}")
            for i, v in enumerate(vals):
                _check_int(v, f"{name}[{i}]", choices)
            object.__setattr__(self, name, tuple(int(v) for v in vals))
        object.__setattr__(self, "embed_dim", int(self.embed_dim))
        object.__setattr__(self, "n_layer", int(self.n_layer))
        object.__setattr__(self, "bias", bool(self.bias))

    @classmethod
    def _trusted(cls, space, embed_dim, n_layer, mlp_ratio, n_head, bias) -> Arch:
        """Build from values already validated (vectorised decode) without re-checking."""
        obj = object.__new__(cls)
        for k, v in zip(("space", "embed_dim", "n_layer", "mlp_ratio", "n_head", "bias"),
                        (space, embed_dim, n_layer, mlp_ratio, n_head, bias)):
            object.__setattr__(obj, k, v)
        return obj

    # ---- HW-GPT-Bench string id ---------------------------------------------------------------
    @property
    def id(self) -> str:
        parts = ["gpt", self.space, str(self.n_layer), str(self.embed_dim),
                 *map(str, self.mlp_ratio), *map(str, self.n_head), str(self.bias)]
        return "-".join(parts)

    def __str__(self) -> str:
        return self.id

    @classmethod
    def from_id(cls, s: str) -> Arch:
        if not isinstance(s, str):
            raise TypeError(f"arch id: expected a str like 'gpt-s-10-192-...-True', got {type(s).__name__}")
        parts = s.strip().split("-")
        if len(parts) < 5 or parts[0] != "gpt":
            raise ValueError(f"arch id: malformed {s!r}; expected 'gpt-{{space}}-{{L}}-{{E}}-"
                             "{r_0}-...-{r_L-1}-{h_0}-...-{h_L-1}-{True|False}'")
        space = get_space(parts[1])
        if not re.fullmatch(r"\d+", parts[2]) or not re.fullmatch(r"\d+", parts[3]):
            raise ValueError(f"arch id: layers and embed_dim must be integers in {s!r}")
        n = int(parts[2])
        _check_int(n, "n_layer", space.n_layers)
        body = parts[4:-1]
        if len(body) != 2 * n:
            raise ValueError(f"arch id: expected {n} mlp ratios and {n} head counts in {s!r}, "
                             f"got {len(body)} numbers")
        if not all(re.fullmatch(r"\d+", b) for b in body):
            raise ValueError(f"arch id: mlp ratios and head counts must be integers in {s!r}")
        bias = _parse_bias(parts[-1])
        return cls(space.name, int(parts[3]), n, tuple(map(int, body[:n])),
                   tuple(map(int, body[n:])), bias)

    # ---- HW-GPT-Bench dict ----------------------------------------------------------------------
    def to_hwg_dict(self, pad: bool = False, bias_as_str: bool = True) -> dict:
        """HW-GPT-Bench's config dict. `pad` repeats the last layer to the space's maximum depth
        (HW-GPT-Bench's lists may be padded; entries past n_layer are ignored either way)."""
        r, h = list(self.mlp_ratio), list(self.n_head)
        if pad:
            extra = get_space(self.space).max_layers - self.n_layer
            r, h = r + [r[-1]] * extra, h + [h[-1]] * extra
        return {
            "sample_embed_dim": self.embed_dim,
            "sample_n_layer": self.n_layer,
            "sample_mlp_ratio": r,
            "sample_n_head": h,
            "sample_bias": str(self.bias) if bias_as_str else self.bias,
            "sample_layer_indices": list(range(self.n_layer)),
        }

    @classmethod
    def from_hwg_dict(cls, d: Mapping, space) -> Arch:
        if not isinstance(d, Mapping):
            raise TypeError(f"arch dict: expected a mapping, got {type(d).__name__}")
        sp = get_space(d.get("space", space) if space is None else space)
        if "space" in d and d["space"] != sp.name:
            raise ValueError(f"space: the dict says {d['space']!r} but space {sp.name!r} was asked for")
        required = ("sample_embed_dim", "sample_n_layer", "sample_mlp_ratio", "sample_n_head", "sample_bias")
        allowed = set(required) | {"sample_layer_indices", "space"}
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"arch dict: missing keys {missing}; required: {list(required)}")
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ValueError(f"arch dict: unknown keys {unknown}; allowed: {sorted(allowed)}")
        n = d["sample_n_layer"]
        _check_int(n, "sample_n_layer", sp.n_layers)
        _check_int(d["sample_embed_dim"], "sample_embed_dim", sp.embed_dims)
        lists = {}
        for key in ("sample_mlp_ratio", "sample_n_head"):
            v = d[key]
            if isinstance(v, np.ndarray):
                v = v.tolist()
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                raise TypeError(f"{key}: expected a list of at least {n} ints, got {type(v).__name__}")
            if len(v) < n:
                raise ValueError(f"{key}: expected at least sample_n_layer={n} entries, got {len(v)}")
            lists[key] = tuple(v[:n])
        if "sample_layer_indices" in d:
            idx = d["sample_layer_indices"]
            if isinstance(idx, np.ndarray):
                idx = idx.tolist()
            if not isinstance(idx, Sequence) or list(idx) != list(range(n)):
                raise ValueError(f"sample_layer_indices: must equal list(range({n})), got {idx!r}")
        return cls(sp.name, _as_int(d["sample_embed_dim"], "sample_embed_dim"), n,
                   lists["sample_mlp_ratio"], lists["sample_n_head"],
                   _parse_bias(d["sample_bias"], "sample_bias"))


def as_arch(x, space=None) -> Arch:
    """Coerce an Arch, HW-GPT-Bench string id or dict into an Arch (of `space`, if given)."""
    sp = get_space(space) if space is not None else None
    if isinstance(x, Arch):
        a = x
    elif isinstance(x, str):
        a = Arch.from_id(x)
    elif isinstance(x, Mapping):
        if sp is None and "space" not in x:
            raise ValueError("space: a dict architecture needs a space (pass space=... or a 'space' key)")
        a = Arch.from_hwg_dict(x, sp.name if sp is not None else None)
    else:
        raise TypeError(f"arch: expected an Arch, a string id or an HW-GPT-Bench dict, got {type(x).__name__}")
    if sp is not None and a.space != sp.name:
        raise ValueError(f"space: architecture {a.id!r} is of space {a.space!r}, expected {sp.name!r}")
    return a


def as_archs(xs, space=None) -> list[Arch]:
    if isinstance(xs, (Arch, str, Mapping)):
        xs = [xs]
    if not isinstance(xs, Iterable):
        raise TypeError(f"archs: expected an iterable of architectures, got {type(xs).__name__}")
    return [as_arch(x, space) for x in xs]


# ---- small validators ------------------------------------------------------------------------
def _as_int(v, field) -> int:
    return check_int(v, field)


def _check_int(v, field, choices) -> None:
    v = _as_int(v, field)
    if v not in choices:
        raise ValueError(f"{field}: {v} is not allowed; allowed: {list(choices)}")


def _parse_bias(v, field="bias") -> bool:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if v in ("True", "False"):
        return v == "True"
    raise ValueError(f"{field}: expected True/False or the strings 'True'/'False', got {v!r}")


def _check_count(n) -> int:
    return check_int(n, "n", min_value=0)


def _set(t: tuple, i: int, v) -> tuple:
    return t[:i] + (v,) + t[i + 1:]
