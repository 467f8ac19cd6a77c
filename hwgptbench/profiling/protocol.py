"""What a profiling run measures and how (docs/PROTOCOLS.md section 4); every field is stored in the
table's provenance, and `key()` names the fields that must match for rows to share a table."""
from __future__ import annotations

import dataclasses
import os

from .. import cost
from ..validation import check_int, plain_ints

__all__ = ["Protocol", "default_protocol", "DTYPES"]

DTYPES = ("float32", "bfloat16", "float16")
_DECODE = ("decode_batch", "decode_prefill", "decode_tokens", "decode_repeats")


def _int(name, v, lo, allow_none=False):
    if not (v is None and allow_none):
        check_int(v, name, lo)


@dataclasses.dataclass(frozen=True)
class Protocol:
    backend: str            # 'cpu' or 'cuda'
    batch: int
    seq: int
    dtype: str
    warmup: int
    repeats: int
    threads: int | None = None            # CPU only
    energy_window_s: float | None = None  # seconds of back-to-back forwards per energy window
    energy_windows: int | None = None     # windows per architecture
    energy_first: int | None = None       # energy only on profiling-set positions below this (None: all)
    decode_batch: int | None = None       # decode: B sequences ...
    decode_prefill: int | None = None     # ... a prefill of T tokens (untimed) ...
    decode_tokens: int | None = None      # ... then G timed greedy steps; decode_ms = ms per step
    decode_repeats: int | None = None     # timed repeats per architecture (per visit in protocol 2) ...
    decode_warmup: int = 1                # ... after this many untimed prefill + decode passes
    decode_first: int | None = None       # decode only on profiling-set positions below this (None: all)
    version: int = 1                      # 1: an architecture's repeats back to back; 2: rounds (rounds.py)
    rounds: int | None = None             # v2: visits per architecture, in rounds over a block ...
    block: int | None = None              # ... of this many architectures, each round in a new seeded order
    sentinel_every: int | None = None     # v2: the sentinel architecture is re-measured every this many visits

    def __post_init__(self):
        plain_ints(self)

    @property
    def decodes(self) -> bool:
        return self.decode_tokens is not None

    def check(self) -> None:
        if self.backend not in ("cpu", "cuda"):
            raise ValueError(f"backend: {self.backend!r} not allowed; allowed: ['cpu', 'cuda']")
        cost.check_shape(self.batch, self.seq)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: {self.dtype!r} not allowed; allowed: {list(DTYPES)}")
        _int("warmup", self.warmup, 0)
        _int("repeats", self.repeats, 1)
        if self.backend == "cuda" and (self.energy_window_s is None or self.energy_window_s <= 0
                                       or not self.energy_windows or self.energy_windows < 1):
            raise ValueError("energy_window_s/energy_windows: expected > 0 on CUDA")
        _int("energy_first", self.energy_first, 0, allow_none=True)
        _int("threads", self.threads, 1, allow_none=True)
        given = [getattr(self, k) is not None for k in _DECODE]
        if any(given) and not all(given):
            raise ValueError(f"decode: give all of {list(_DECODE)} or none, got "
                             f"{ {k: getattr(self, k) for k in _DECODE} }")
        if self.decodes:
            for k in _DECODE:
                _int(k, getattr(self, k), 1)
            if self.decode_prefill + self.decode_tokens > cost.BLOCK_SIZE:
                raise ValueError(f"decode_prefill + decode_tokens: at most the context {cost.BLOCK_SIZE}, got "
                                 f"{self.decode_prefill} + {self.decode_tokens}")
        _int("decode_first", self.decode_first, 0, allow_none=True)
        _int("decode_warmup", self.decode_warmup, 0)
        if self.version not in (1, 2):
            raise ValueError(f"version: {self.version!r} not allowed; allowed: [1, 2]")
        if self.version == 2:
            if self.backend != "cpu":
                raise ValueError("version: protocol 2 (rounds, sentinel) is the CPU protocol; backend must be 'cpu'")
            for k in ("rounds", "block", "sentinel_every"):
                _int(k, getattr(self, k), 1)

    def key(self) -> dict:
        """The fields that must match for rows to share a table."""
        keys = ("backend", "batch", "seq", "dtype") + (("threads",) if self.backend == "cpu" else ())
        if self.decodes:
            keys += ("decode_batch", "decode_prefill", "decode_tokens")
        if self.version != 1:          # (version-1 tables keep the key they were written with)
            keys += ("version",)
        return {k: getattr(self, k) for k in keys}


def default_protocol(backend: str, version: int = 1) -> Protocol:
    """docs/PROTOCOLS.md section 4 defaults: the GPU protocol, CPU protocol 1 (all cores, repeats back to
    back) or CPU protocol 2 (one thread on a reserved core, rounds, sentinel, decode)."""
    if backend == "cuda":          # the one GPU protocol; a lease (gpu_plan) sets the energy window and subsets
        return Protocol("cuda", batch=8, seq=1024, dtype="bfloat16", warmup=5, repeats=10,
                        energy_window_s=0.5, energy_windows=3, decode_batch=8, decode_prefill=512,
                        decode_tokens=32, decode_repeats=5)
    if version == 2:
        # chosen from the experiments in benchmarks.md ("CPU protocol v2"): what buys agreement is
        # visits spread over minutes (the median of 3 rejects a bad visit), not repeats within one
        return Protocol("cpu", batch=1, seq=256, dtype="float32", warmup=1, repeats=1, threads=1,
                        decode_batch=1, decode_prefill=128, decode_tokens=16, decode_repeats=1, decode_warmup=0,
                        version=2, rounds=3, block=100, sentinel_every=20)
    return Protocol("cpu", batch=1, seq=256, dtype="float32", warmup=1, repeats=5, threads=os.cpu_count())
