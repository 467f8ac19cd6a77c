"""The profiling set: one fixed, seeded order of architectures per space, shared by all devices.

Its head is the 32 corner architectures (every combination of the smallest/largest embedding,
depth, MLP ratio and head count, with and without bias; the largest and smallest first), so that a
partly profiled device still spans the extremes. After the head comes a seeded stream of
per-gene-uniform random architectures (duplicates skipped), generated in fixed-size chunks, so
every prefix of the stream is a uniform random sample and the first n entries never depend on
how many are asked for.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from ..space import Arch, get_space
from ..validation import check_int

PROFILING_SEED = 20261122
_CHUNK = 1024


def corners(space) -> list[Arch]:
    sp = get_space(space)
    out = [sp.largest(), sp.smallest()]
    lo_hi = lambda c: (min(c), max(c))  # noqa: E731
    for E, L, r, h, b in itertools.product(lo_hi(sp.embed_dims), lo_hi(sp.n_layers), lo_hi(sp.mlp_ratios),
                                          lo_hi(sp.n_heads), (True, False)):
        a = sp.arch(E, L, [r] * L, [h] * L, b)
        if a not in out:
            out.append(a)
    return out


def profiling_set(space, n: int) -> list[Arch]:
    """The first n architectures of the space's profiling set."""
    sp = get_space(space)
    n = check_int(n, "n", 0, max_value=sp.size)     # distinct architectures: at most the whole space
    return list(_cached(sp.name, min(_round_up(n), sp.size))[:n])


def _round_up(n: int) -> int:
    return max(_CHUNK, -(-n // _CHUNK) * _CHUNK)


@lru_cache(maxsize=8)
def _cached(space: str, n: int) -> tuple[Arch, ...]:
    sp = get_space(space)
    out = corners(space)
    seen = set(out)
    # the seed holds the name's characters (one-letter names gave [PROFILING_SEED, ord(name)] before)
    rng = np.random.default_rng([PROFILING_SEED, *map(ord, space)])
    while len(out) < n:
        for a in sp.decode(sp.sample_features(_CHUNK, rng)):
            if a not in seen:
                seen.add(a)
                out.append(a)
    return tuple(out)
