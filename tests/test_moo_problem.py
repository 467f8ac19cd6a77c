"""Problems (bounds, signs, reference fronts) and the genotype encoding."""
import json
import warnings

import numpy as np
import pytest

pytest.importorskip("moocore")

from hwgptbench import cost  # noqa: E402
from hwgptbench.moo import indicators  # noqa: E402
from hwgptbench.moo.encoding import Encoding  # noqa: E402
from hwgptbench.moo.problem import (REGISTRY, STANDARD_PROBLEMS, Problem,  # noqa: E402
                                    available_problems, get_problem, shipped_problems)
from hwgptbench.moo.problem import sample_bounds as _sample_bounds  # noqa: E402
from hwgptbench.space import get_space  # noqa: E402

from moo_fixtures import FidelityBench  # noqa: E402


def test_extremes_normalise_to_the_corners():
    P = get_problem("s:-params,flops")
    sp = P.space
    F = P(sp.encode([sp.smallest(), sp.largest()]))
    # smallest: least params (worst for -params) and fewest FLOPs; largest: the opposite
    assert F == pytest.approx(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert P.ref_point.tolist() == [1.1, 1.1]


def test_raw_objectives_are_signed_columns():
    P = Problem("s", ["-params", "flops"])
    X = P.space.sample_features(20, seed=3)
    R = P.raw(X)
    assert np.array_equal(R[:, 0], -cost.params(X, "s").astype(float))
    assert np.array_equal(R[:, 1], cost.flops(X, "s").astype(float))
    assert P.denormalise(P.normalise(R)) == pytest.approx(R)


def test_bad_objectives():
    with pytest.raises(ValueError, match="perplexity"):
        Problem("s", "perplexity,flops")
    with pytest.raises(ValueError, match="latency_ms@nowhere"):
        Problem("s", "latency_ms@nowhere,flops")
    with pytest.raises(ValueError, match=">= 2 objectives"):
        Problem("s", "flops")
    with pytest.raises(ValueError, match="once"):
        Problem("s", "flops,-flops")
    with pytest.raises(ValueError, match=r"objectives: \['--params'\] have more than one '-'"):
        Problem("s", "--params,flops")
    with pytest.raises(ValueError, match="space"):
        get_problem("flops,params")


def test_shipped_registry_and_front():
    assert set(shipped_problems()) >= {"s:-params,flops", "s:-params,memory_MB_analytic",
                                       "s:-params,flops,memory_MB_analytic"}
    for name in shipped_problems():
        P = get_problem(name)
        R = P.reference_front
        assert R.shape[1] == P.n_obj
        assert np.all(indicators.nondominated(R))
        assert np.all(R >= -1e-12) and np.all(R <= 1 + 1e-12)      # bounds cover the front
        # the reference front beats a random sample of the space
        Xr = P.space.sample_features(500, seed=0)
        assert indicators.hypervolume(R, P.ref_point) > indicators.hypervolume(P(Xr), P.ref_point)
        assert indicators.igd_plus(P(Xr), R) > 0
    json.loads(REGISTRY.read_text())                                 # plain JSON


def test_front_checksum_is_verified():
    P = get_problem("s:-params,flops")
    P._front_entry = dict(P._front_entry, front_sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        P.reference_front


def test_unshipped_problem_uses_fixed_sample_bounds(monkeypatch):
    import hwgptbench.moo.problem as pm
    monkeypatch.setattr(pm, "_SAMPLED_BOUNDS", {})
    calls = []
    monkeypatch.setattr(pm, "sample_bounds", lambda P: calls.append(P) or _sample_bounds(P))
    P = Problem("s", "flops,memory_MB_analytic")                  # cheap: nothing computed yet
    assert not calls
    with pytest.warns(UserWarning, match="no shipped bounds"):
        P.lower
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # computed and warned once
        Q = Problem("s", "flops,memory_MB_analytic")
        assert np.array_equal(P.lower, Q.lower) and np.array_equal(P.upper, Q.upper)
    assert len(calls) == 1
    # the range of the mean objectives over the fixed sample, recomputed here independently
    sp = P.space
    X = np.vstack([sp.sample_features(20_000, seed=0), sp.encode([sp.smallest(), sp.largest()])])
    assert np.array_equal(P.lower, [cost.flops(X, "s").min(), cost.memory_mb(X, "s").min()])
    with pytest.raises(ValueError, match="no reference front"):
        P.reference_front


def test_available_problems_split():
    ok, missing = available_problems(STANDARD_PROBLEMS)
    assert "s:-params,flops" in ok
    assert all("not available" in why for why in missing.values())
    assert set(ok) | set(missing) == set(STANDARD_PROBLEMS)


@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_encoding_round_trip(space):
    enc = Encoding(space)
    sp = get_space(space)
    rng = np.random.default_rng(0)
    G = enc.sample(300, rng)
    X = enc.to_features(G)
    assert X.dtype == np.int64
    sp.validate_features(X)
    assert np.array_equal(enc.to_features(enc.from_features(X)), X)
    Xs = sp.sample_features(300, seed=1)
    assert np.array_equal(enc.to_features(enc.from_features(Xs)), Xs)
    with pytest.raises(ValueError, match="gene"):
        enc.to_features(np.full((1, enc.n_genes), 5))


def test_mutate_one_changes_exactly_one_live_gene():
    enc = Encoding("s")
    rng = np.random.default_rng(1)
    G = enc.sample(500, rng)
    M = enc.mutate_one(G, rng)
    diff = M != G
    assert np.all(diff.sum(axis=1) == 1)
    assert np.all(enc.live_genes(G)[diff])
    assert not np.any(np.all(enc.to_features(M) == enc.to_features(G), axis=1))


def test_perplexity_means_the_last_fidelity():
    P = Problem("s", "perplexity,flops", benchmark=FidelityBench())
    assert P.columns == ("perplexity_f100", "flops")
    assert P.fidelities == (25, 50, 75, 100)
    X = P.space.sample_features(5, seed=0)
    assert P.raw(X)[:, 0] == pytest.approx(1e9 / cost.params(X, "s"))
    assert np.all(P.raw(X, fidelity=25)[:, 0] > P.raw(X)[:, 0])
    assert P.raw(X, fidelity=25)[:, 1] == pytest.approx(P.raw(X)[:, 1])
    with pytest.raises(ValueError, match="fidelity"):
        P.raw(X, fidelity=30)
    assert get_problem("s:-params,flops").fidelities == ()


def test_stale_surrogates_warn(monkeypatch):
    import hwgptbench.moo.problem as pm
    assert get_problem("s:-params,flops").surrogates_fingerprint() is None   # exact columns only
    reg = dict(pm._registry())
    reg["s:-params,flops"] = dict(reg["s:-params,flops"], surrogates_fingerprint="0" * 64)
    monkeypatch.setattr(pm, "_registry", lambda: reg)
    P = Problem("s", "-params,flops")
    with pytest.warns(UserWarning, match="other surrogates"):
        P.lower
