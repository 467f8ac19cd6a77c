"""Closed-form cost model of the GPT in `hwgptbench.model`, vectorised over feature rows (numpy).

What is counted (and checked against torch in tests/test_cost.py):

* **Parameters**: token embedding ``V*E`` (V = the space's padded vocabulary, 50304 for s/m/l, tied with the LM head, counted once), per
  block two LayerNorms ``4E``, qkv ``E*3*64h (+3*64h)``, attention projection ``64h*E (+E)``,
  MLP ``2*r*E*E (+r*E + E)`` (bracketed terms only with bias), final LayerNorm ``2E``. Rotary
  tables are buffers, not parameters.
* **Forward FLOPs** for batch B and sequence T, the convention of
  ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add, matmuls only):
  every Linear ``2*B*T*in*out`` (the LM head on all T positions included), and attention scores
  plus values ``2 * 2*B*h*T*T*64`` counted over the **full** T x T matrix (the causal mask is not
  subtracted, as torch counts it). Bias adds, LayerNorm, GELU, rotary, softmax and the embedding
  lookup are not counted (they are < 1% for these shapes).
* **Inference memory estimate** (analytic, not measured) in MB = 2**20 bytes, for one prefill
  forward under ``torch.inference_mode`` in a dtype of ``s`` bytes::

      memory = s * (params + B*T*(V + 2E) + B*T*max_i(block_i))
      block_i = max(attn_i, mlp_i)
      attn_i  = 2E + 3*64h_i + 4*64h_i    # x, ln1(x), qkv, rotated q and k, y and its contiguous copy
      mlp_i   = 3E + 2*r_i*E              # x, x+attn, ln2(x), fc output, GELU output

  (attn_i grows with h_i alone and mlp_i with r_i alone, so max_i(block_i) is computed as
  ``max(2E + 7*64*max_i h_i, 3E + 2E*max_i r_i)``: the same integers, without per-layer arrays.)

  ``B*T*(V + 2E)`` is the logits plus the residual stream and final-LayerNorm output alive while
  they are computed. Allocator rounding, SDPA workspaces and the CUDA context are not modelled;
  the estimate's error against measured GPU peaks is reported in benchmarks.md.
* **Decode** (one token at a time against a KV cache, ``GPT.next_token``): a decode step with P
  tokens already cached runs every Linear on one token per sequence and attends over P + 1 keys::

      decode step = 2*B*(4*a*E + 2*E*E*sum r + E*V) + 2*2*B*a*(P + 1)     # a = 64 * sum h

  ``decode_flops(..., prefix_len=T, steps=G)`` sums G consecutive steps (P = T..T+G-1): the work
  behind one ``decode_ms`` row (ms per generated token over G tokens after a prefill of T), whose
  mean per token is that sum / G. The **KV cache** for S positions holds keys and values of every
  layer, ``2*B*S*64*sum h`` elements (``kv_cache_mb``), and the decode memory estimate is
  weights + cache + one token's activations, ``memory_mb(batch, seq=1) + kv_cache_mb(batch, S)``
  (attention scores over the cache, B*h_i*S per layer, are not materialised by fused SDPA
  kernels and are not modelled).
"""
from __future__ import annotations

import numpy as np

from .space import get_space
from .validation import check_int

__all__ = ["VOCAB_SIZE", "VOCAB_PADDED", "BLOCK_SIZE", "HEAD_SIZE", "ROTARY_DIMS", "DTYPE_BYTES",
           "EXACT_FEATURE_NAMES", "params", "flops", "memory_mb", "weights_mb", "exact_features",
           "decode_flops", "kv_cache_mb", "decode_memory_mb", "check_shape", "Sums"]

# s, m and l's vocabulary and context; each space carries its own (SearchSpace.vocab_size, .block_size)
VOCAB_SIZE = 50257       # GPT-2 BPE
VOCAB_PADDED = 50304     # embedding rows (multiple of 64)
BLOCK_SIZE = 1024        # context length
HEAD_SIZE = 64           # fixed head size
ROTARY_DIMS = 32         # rotary embedding on the first half of each head
DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}
EXACT_FEATURE_NAMES = ("params", "flops", "sum_mlp_ratio", "sum_heads", "mlp_width_sum", "attn_width_sum")

# Every function takes architectures in any form `SearchSpace.features` accepts (a feature matrix,
# Arch objects, ids, dicts) and checks them there, once: a FeatureMatrix passes straight through.


class Sums:
    """Checked rows reduced to what the closed forms read: the rows as a plain array, the space's
    maximum depth, and `terms` = (E, L, bias, sum of MLP ratios, sum of heads, padded vocabulary) as
    int64 (params and FLOPs are linear in each layer's (ratio, heads), so they depend on an
    architecture only through these). Every function here takes one in place of the rows: a query
    asks for several costs of the same rows (params, FLOPs, memory, the surrogates' derived
    features) and reduces them once. A single row's terms are Python ints: the same formulas then
    run as exact scalar arithmetic, far cheaper than numpy's per-call cost on 1-element arrays (a
    single-architecture query), and `column` makes each result an array again."""

    __slots__ = ("space", "A", "lm", "one", "terms", "_widest", "_params", "_flops")

    def __init__(self, X, space):
        self.space = get_space(space)
        A, lm = np.asarray(self.space.features(X)), self.space.max_layers      # checked; a plain view slices fast
        self.A, self.lm, self.one = A, lm, len(A) == 1
        if self.one:
            row = A[0].tolist()
            self.terms = (row[0], row[1], row[2], sum(row[3:3 + lm]), sum(row[3 + lm:]), self.space.vocab_padded)
        else:
            col = lambda j: A[:, j].astype(np.int64)  # noqa: E731  (compact dtypes widen here)
            self.terms = (col(0), col(1), col(2), A[:, 3:3 + lm].sum(axis=1, dtype=np.int64),
                          A[:, 3 + lm:].sum(axis=1, dtype=np.int64), self.space.vocab_padded)
        self._widest = self._params = None
        self._flops = {}                     # (batch, seq) -> forward FLOPs

    @classmethod
    def of(cls, X, space) -> Sums:
        """X itself when it already is the Sums of rows of `space`, else the Sums of rows X."""
        if isinstance(X, cls):
            if X.space.name != get_space(space).name:
                raise ValueError(f"space: these sums are of space {X.space.name!r}, not {get_space(space).name!r}")
            return X
        return cls(X, space)

    def column(self, v, dtype=np.int64) -> np.ndarray:
        """A formula's result as an array, one entry per row (a single row's is a Python number)."""
        return np.array([v], dtype=dtype) if self.one else v

    @property
    def params(self):
        if self._params is None:
            self._params = _params(*self.terms)
        return self._params

    def flops(self, batch: int, seq: int):
        """Forward FLOPs at a checked (batch, seq) (`check_shape`), computed once per shape: a
        query's FLOPs column and a surrogate's design matrix read the same numbers."""
        if (batch, seq) not in self._flops:
            E, L, b, sr, sh, V = self.terms
            self._flops[batch, seq] = _flops(E, sr, sh, V, batch, seq)
        return self._flops[batch, seq]

    def widest(self):
        """(largest MLP ratio, largest head count) of each row: layers past the depth are 0, never
        the largest."""
        if self._widest is None:
            A, lm = self.A, self.lm
            if self.one:
                row = A[0].tolist()
                self._widest = (max(row[3:3 + lm]), max(row[3 + lm:]))
            else:
                self._widest = (A[:, 3:3 + lm].max(axis=1).astype(np.int64), A[:, 3 + lm:].max(axis=1).astype(np.int64))
        return self._widest


def params(X, space) -> np.ndarray:
    """Exact parameter count of each architecture (int64)."""
    S = Sums.of(X, space)
    return S.column(S.params)


def _params(E, L, b, sr, sh, V):
    a = HEAD_SIZE * sh                     # attention width summed over layers
    return (V * E + 2 * E + 4 * E * L + 4 * a * E + 2 * E * E * sr
            + b * (3 * a + 2 * E * L + E * sr))


def flops(X, space, batch: int = 1, seq: int | None = None) -> np.ndarray:
    """Forward FLOPs (FlopCounterMode convention, see module docstring), int64, exact: a batch
    whose count would not fit int64 is refused (ValueError naming the largest allowed batch).
    `seq` defaults to the space's context length."""
    batch, seq = check_shape(batch, seq, space)
    S = Sums.of(X, space)
    return S.column(S.flops(batch, seq))


def _flops(E, sr, sh, V, batch, seq):
    a = HEAD_SIZE * sh
    # per token: qkv + proj (4aE), MLP (2 r E^2), scores + values (2 a T), LM head (E V)
    per_token = 4 * a * E + 2 * E * E * sr + 2 * a * seq + E * V
    _check_exact(lambda B: 2 * B * seq * _top(per_token), batch, seq, "forward FLOPs")
    return 2 * batch * seq * per_token


_INT64_MAX = int(np.iinfo(np.int64).max)


def _top(v) -> int:
    """The largest entry as an exact Python int (0 for no rows; a single row's is that int)."""
    if isinstance(v, int):
        return v
    return int(v.max()) if len(v) else 0


def _float(v):
    """Exact integers as float64 (rounded to nearest), an array or a single row's Python int."""
    return float(v) if isinstance(v, int) else v.astype(np.float64)


def _check_exact(total_at, batch: int, seq: int, what: str) -> None:
    """Refuse a batch whose int64 arithmetic would overflow (silently wrapping into negative or
    zero counts). `total_at(B)`: the largest result over the rows at batch B, exact (Python int),
    non-decreasing in B."""
    if total_at(batch) <= _INT64_MAX:
        return
    lo, hi = 0, batch                     # the largest batch that still fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if total_at(mid) <= _INT64_MAX else (lo, mid - 1)
    raise ValueError(f"batch: {batch} (at seq {seq}) gives {what} of {float(total_at(batch)):.4g} for these "
                     f"architectures, beyond the exact int64 range ({float(_INT64_MAX):.4g}); "
                     f"allowed: batch <= {lo} at seq {seq}")


def memory_mb(X, space, batch: int = 1, seq: int | None = None, dtype: str = "bfloat16") -> np.ndarray:
    """Analytic inference memory estimate in MB (2**20 bytes); an estimate, not a measurement."""
    batch, seq = check_shape(batch, seq, space)
    s = _dtype_bytes(dtype)
    S = Sums.of(X, space)
    E, V = S.terms[0], S.terms[5]
    r_max, h_max = S.widest()
    attn, mlp = 2 * E + 7 * HEAD_SIZE * h_max, 3 * E + 2 * r_max * E
    block = max(attn, mlp) if S.one else np.maximum(attn, mlp)
    weights, act = S.params, V + 2 * E + block
    _check_exact(lambda B: _top(weights) + B * seq * _top(act), batch, seq, "memory elements")
    total = weights + batch * seq * act
    return S.column(s * _float(total) / 2 ** 20, np.float64)


def decode_flops(X, space, batch: int, prefix_len: int, steps: int = 1) -> np.ndarray:
    """FLOPs of `steps` consecutive one-token decode steps, the first with `prefix_len` tokens
    cached (FlopCounterMode convention, see module docstring), int64."""
    _check_decode(prefix_len, steps, space)
    batch, _ = check_shape(batch, prefix_len + steps, space)
    S = Sums.of(X, space)
    E, L, b, sr, sh, V = S.terms
    a = HEAD_SIZE * sh
    keys = steps * (prefix_len + 1) + steps * (steps - 1) // 2      # sum of P + 1 over the steps
    per_seq = steps * (4 * a * E + 2 * E * E * sr + E * V) + 2 * a * keys
    _check_exact(lambda B: 2 * B * _top(per_seq), batch, prefix_len + steps, "decode FLOPs")
    return S.column(2 * batch * per_seq)


def kv_cache_mb(X, space, batch: int, seq: int, dtype: str = "bfloat16") -> np.ndarray:
    """Bytes of a KV cache for `seq` positions in MB (2**20 bytes): keys and values of every layer."""
    batch, seq = check_shape(batch, seq, space)
    S = Sums.of(X, space)
    sh = S.terms[4]
    _check_exact(lambda B: 2 * B * seq * HEAD_SIZE * _top(sh), batch, seq, "KV-cache elements")
    return S.column(_dtype_bytes(dtype) * _float(2 * batch * seq * HEAD_SIZE * sh) / 2 ** 20, np.float64)


def decode_memory_mb(X, space, batch: int, seq: int, dtype: str = "bfloat16") -> np.ndarray:
    """Analytic decode memory estimate in MB: weights + a KV cache of `seq` positions + one token's
    activations (module docstring); an estimate, not a measurement."""
    return memory_mb(X, space, batch, 1, dtype) + kv_cache_mb(X, space, batch, seq, dtype)


def weights_mb(X, space, dtype: str = "bfloat16") -> np.ndarray:
    S = Sums.of(X, space)
    return S.column(_dtype_bytes(dtype) * _float(S.params) / 2 ** 20, np.float64)


def exact_features(X, space, batch: int = 1, seq: int | None = None) -> np.ndarray:
    """Derived exact features for surrogates (EXACT_FEATURE_NAMES): params, FLOPs, per-layer sums."""
    batch, seq = check_shape(batch, seq, space)
    S = Sums.of(X, space)
    E, L, b, sr, sh, V = S.terms
    values = (S.params, S.flops(batch, seq), sr, sh, sr * E, sh * HEAD_SIZE)
    return np.array(values, dtype=np.float64).reshape(len(values), -1).T     # (rows, features)


def _dtype_bytes(dtype: str) -> int:
    name = dtype if isinstance(dtype, str) else str(dtype) if type(dtype).__module__ == "torch" else None
    try:
        return DTYPE_BYTES[name.replace("torch.", "")]
    except (KeyError, AttributeError):
        raise ValueError(f"dtype: unknown {dtype!r}; allowed: {sorted(DTYPE_BYTES)}") from None


def check_shape(batch, seq, space=None):
    """(batch, seq) checked; seq None is the space's context length, and at most that (s/m/l's
    1024 when no space is named)."""
    block = BLOCK_SIZE if space is None else get_space(space).block_size
    return check_int(batch, "batch", 1), check_int(block if seq is None else seq, "seq", 1, max_value=block)


def _check_decode(prefix_len, steps, space):
    check_int(prefix_len, "prefix_len", 0)
    check_int(steps, "steps", 1)
    block = get_space(space).block_size
    if prefix_len + steps > block:
        raise ValueError(f"prefix_len + steps: at most the context length {block}, got "
                         f"{prefix_len} + {steps}")
