"""Surrogates: exact derived features, numpy tree evaluation, fitting on a synthetic table with a
known truth, checksummed loading, and sane predictions on many random architectures."""
import json
import shutil

import numpy as np
import pytest
from surrogate_fixtures import SIGMA, make_data_dir, true_latency, true_perplexity

from hwgptbench import cost, get_space
from hwgptbench import surrogates as S
from hwgptbench.benchmark import Benchmark
from hwgptbench.surrogates.store import sha256
from hwgptbench.surrogates.trees import TreeEnsemble

xgb = pytest.importorskip("xgboost")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    data = make_data_dir(root / "data", perplexity=["s"])
    manifest = S.fit_all(data, root / "surrogates", log=lambda *a: None)
    return root / "data", root / "surrogates", manifest


# ---- features -----------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["s", "m", "l"])
@pytest.mark.parametrize("batch,seq", [(1, 1024), (8, 1024), (1, 256)])
def test_design_matrix_derived_features_equal_cost_model(space, batch, seq):
    sp = get_space(space)
    X = np.vstack([sp.encode([sp.largest(), sp.smallest()]), sp.sample_features(500, seed=3)])
    F = S.design_matrix(X, space, batch, seq)
    assert F.dtype == np.float32 and F.shape == (len(X), len(S.feature_names(space)))
    assert np.array_equal(F[:, :sp.n_features], X)
    np.testing.assert_allclose(F[:, sp.n_features:], cost.exact_features(X, space, batch, seq), rtol=1e-6)


@pytest.mark.parametrize("depth", [0, 1, 3, 4])      # a lone leaf, the lookup path (<= 3), the level walk
def test_numpy_trees_equal_xgboost(depth):
    rng = np.random.default_rng(0)
    F = rng.integers(0, 5, size=(5000, 7)).astype(np.float32)        # more rows than one chunk
    y = F[:, 0] * 2 - F[:, 3] ** 2 + F[:, 1] * F[:, 2] + rng.standard_normal(5000)
    lone = {"max_depth": 1, "min_split_loss": 1e12} if depth == 0 else {"max_depth": depth}   # (0 is unlimited)
    booster = xgb.train({**lone, "eta": 0.3, "nthread": 1, "seed": 0, "base_score": 0.0},
                        xgb.DMatrix(F, label=y), 50)
    margin = rng.standard_normal(5000)
    want = booster.inplace_predict(F, base_margin=margin.astype(np.float32))
    got = TreeEnsemble.from_ubj(bytes(booster.save_raw("ubj"))).predict(F, margin)
    np.testing.assert_array_equal(got, want)          # xgboost's own arithmetic, bit for bit


def test_forest_equals_each_ensemble_and_xgboost():
    """A Forest evaluates several boosters at once (distinct splits decided once, few rows row by
    row, many column-major); each result must still be that booster's own, bit for bit."""
    from hwgptbench.surrogates.trees import Forest
    rng = np.random.default_rng(1)
    F = rng.integers(0, 6, size=(3000, 9)).astype(np.float32)
    boosters = []
    for depth, rounds, k in ((3, 40, 0), (1, 7, 1), (2, 25, 2), (3, 0, 3), (3, 160, 4)):
        y = F[:, k] * (k + 1) - F[:, (k + 3) % 9] ** 2 + F[:, 5] * F[:, 6] + rng.standard_normal(len(F))
        boosters.append(xgb.train({"max_depth": depth, "eta": 0.3, "nthread": 1, "seed": k, "base_score": 0.0},
                                  xgb.DMatrix(F, label=y), rounds))
    ensembles = [TreeEnsemble.from_ubj(bytes(b.save_raw("ubj"))) for b in boosters]
    forest = Forest(ensembles)
    margins = rng.standard_normal((len(F), len(ensembles)))
    for n in (1, 2, 63, 64, 65, 3000):             # both layouts and their edges
        got = forest.predict(F[:n], margins[:n])
        for j, (b, e) in enumerate(zip(boosters, ensembles)):
            np.testing.assert_array_equal(got[:, j], e.predict(F[:n], margins[:n, j]))
            if b.num_boosted_rounds():
                np.testing.assert_array_equal(got[:, j], b.inplace_predict(F[:n], base_margin=margins[:n, j].astype(np.float32)))
    lone = xgb.train({"max_depth": 1, "min_split_loss": 1e12, "nthread": 1, "base_score": 0.0},
                     xgb.DMatrix(F, label=F[:, 0]), 5)                    # trees of a single leaf (depth 0)
    leaves = Forest([TreeEnsemble.from_ubj(bytes(lone.save_raw("ubj")))])
    for n in (1, 3000):
        np.testing.assert_array_equal(leaves.predict(F[:n], margins[:n, :1])[:, 0],
                                      lone.inplace_predict(F[:n], base_margin=margins[:n, 0].astype(np.float32)))
    # ensembles reading different matrices side by side: the second reads columns 9.. of [F | G]
    G = rng.integers(0, 6, size=F.shape).astype(np.float32)
    wide = Forest(ensembles, offsets=[0, 9, 0, 9, 9])
    for n in (1, 3000):
        got = wide.predict(np.hstack([F, G])[:n], margins[:n])
        for j, (e, src) in enumerate(zip(ensembles, (F, G, F, G, G))):
            np.testing.assert_array_equal(got[:, j], e.predict(src[:n], margins[:n, j]))


@pytest.mark.parametrize("space", ["xs", "s", "m", "l"])
def test_every_column_at_once_equals_each_alone(space):
    """Columns are evaluated together (one Forest per design matrix, one pass of cost sums): each
    value must equal what asking for that column alone gives, bit for bit, for one row and many.
    HW-GPT-Bench's MLPs run on BLAS, whose float32 kernels for a few rows round differently from
    those for many: those columns agree to float32 precision."""
    b = Benchmark(space)
    X = b.space.sample_features(300, seed=5)
    cols = b.columns()
    together = b.evaluate(X, cols)
    noisy = b.evaluate(X, cols, noise=True, seed=3)
    for j, c in enumerate(cols):
        np.testing.assert_array_equal(together[:, j], b.evaluate(X, [c])[:, 0], err_msg=c)
        np.testing.assert_array_equal(noisy[:, j], b.evaluate(X, [c], noise=True, seed=3)[:, 0], err_msg=c)
    blas = set(b._sourced())
    for i in (0, 7):
        one = b.query(b.space.decode(X[i:i + 1])[0])
        for c, v in zip(cols, together[i]):
            if c in blas:
                assert one[c] == pytest.approx(v, rel=1e-6), c
            else:
                assert one[c] == v, c


def test_holdout_split_is_stable_and_about_20_percent():
    ids = [f"arch-{i}" for i in range(5000)]
    m = S.holdout_mask(ids, 0.2, 7)
    assert 0.18 < m.mean() < 0.22
    assert np.array_equal(S.holdout_mask(ids[:100], 0.2, 7), m[:100])     # growing a table keeps it
    assert not np.array_equal(S.holdout_mask(ids, 0.2, 8), m)


# ---- fitting on a known truth -----------------------------------------------------------------------
def test_fit_recovers_known_truth_and_reports_unavailable(fitted):
    _, out, manifest = fitted
    keys = set(manifest["surrogates"])
    assert keys == {"s/testdev/latency_ms", "m/testdev/latency_ms", "l/testdev/latency_ms",
                    "s/perplexity/perplexity_f50", "s/perplexity/perplexity_f100"}
    reasons = {u["column"]: u["reason"] for u in manifest["unavailable"]}
    assert "analytic" in reasons["memory_MB@testdev"] and "no finite" in reasons["energy_J@testdev"]
    e = manifest["surrogates"]["s/testdev/latency_ms"]
    q = e["quality"]
    assert q["kendall_tau"] > 0.85 and q["spearman"] > 0.95 and q["r2"] > 0.9
    assert q["mape"] < 0.1                         # noise alone is ~4% (sigma 0.05)
    assert 0.8 <= q["coverage90"] <= 0.98
    assert e["n_train"] + e["n_test"] == e["n_rows"] and e["n_test"] > 30
    assert e["unit"] == "ms" and e["column"] == "latency_ms@testdev" and e["derived_features_at"]["seq"] == 256
    assert "lscpu" not in json.dumps(e["hardware"])
    for f in e["files"].values():
        assert sha256((out / f["path"]).read_bytes()) == f["sha256"]
    assert set(manifest["library_versions"]) >= {"xgboost", "numpy", "python"}


def test_perplexity_tables_give_device_free_deterministic_columns(fitted):
    _, out, manifest = fitted
    e = manifest["surrogates"]["s/perplexity/perplexity_f100"]
    assert e["column"] == "perplexity_f100" and e["device"] is None and e["unit"] == "1"
    assert set(e["files"]) == {"ubj", "npz"}                  # one value per arch: no noise model
    assert manifest["surrogates"]["s/perplexity/perplexity_f50"]["n_rows"] < e["n_rows"]   # NaN rows
    assert e["quality"]["kendall_tau"] > 0.9
    b = Benchmark("s", surrogates=out)
    X = b.space.sample_features(2000, seed=4)
    pred = b.evaluate(X, ["perplexity_f100"])[:, 0]
    assert np.median(np.abs(pred / true_perplexity(X, "s", 100) - 1)) < 0.05
    assert np.array_equal(b.evaluate(X, ["perplexity_f100"], noise=True, seed=1)[:, 0], pred)
    assert "perplexity_f100" in b.select(devices=["testdev"])     # device-free columns always come
    # `perplexity` is the last fidelity, as objectives name it; the same model, loaded once
    assert {"perplexity_f100", "perplexity_f50", "perplexity"} <= set(b.columns())
    assert np.array_equal(b.evaluate(X, ["perplexity"])[:, 0], pred)
    assert b._store.get("s", "perplexity") is b._store.get("s", "perplexity_f100")
    assert "last training fidelity" in b.metrics()["perplexity"]["description"]


def test_noise_model_matches_the_known_repeat_spread(fitted):
    _, out, _ = fitted
    s = S.SurrogateStore(out).get("s", "latency_ms@testdev")
    sp = get_space("s")
    F = S.design_matrix(sp.sample_features(2000, seed=5), "s", 1, 256)
    # the per-arch scale is a MAD of 5 repeats (biased low, noisy); what must match is the spread
    # of the draws, scale * eps, against the true sigma of a single repeat
    scale = np.exp(s.log_noise_scale(F))
    assert np.all((scale > 0.3 * SIGMA) & (scale < 2 * SIGMA))
    draws = np.log(s.predict(F, noise=True, rng=np.random.default_rng(1)) / s.predict(F))
    assert 0.6 * SIGMA < np.std(draws) < 1.6 * SIGMA


def test_too_few_rows_is_reported_not_raised(tmp_path):
    data = make_data_dir(tmp_path / "data", {"s": 22})
    m = S.fit_all(data, tmp_path / "out", log=lambda *a: None)
    assert m["surrogates"] == {}
    reasons = {u["column"]: u["reason"] for u in m["unavailable"]}
    assert "training architectures" in reasons["latency_ms@testdev"]


def test_refit_is_deterministic(fitted, tmp_path):
    data, _, manifest = fitted
    again = S.fit_all(data, tmp_path, spaces=["m"], log=lambda *a: None)
    a, b = manifest["surrogates"]["m/testdev/latency_ms"], again["surrogates"]["m/testdev/latency_ms"]
    assert a["files"] == b["files"]


# ---- loading ------------------------------------------------------------------------------------------
def test_tampered_or_missing_file_is_a_clear_error(fitted, tmp_path):
    _, out, manifest = fitted
    copy = tmp_path / "surr"
    shutil.copytree(out, copy)
    path = copy / manifest["surrogates"]["s/testdev/latency_ms"]["files"]["ubj"]["path"]
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(S.SurrogateError, match=r"sha256.*latency_ms\.[0-9a-f]{12}\.ubj|latency_ms\.[0-9a-f]{12}\.ubj.*sha256"):
        Benchmark("s", surrogates=copy).query(get_space("s").smallest())
    path.unlink()
    with pytest.raises(S.SurrogateError, match=r"latency_ms\.[0-9a-f]{12}\.ubj.*missing"):
        Benchmark("s", surrogates=copy).query(get_space("s").smallest())
    # exact columns never touch the surrogate files
    assert Benchmark("s", surrogates=copy).evaluate(get_space("s").sample(3, seed=0), ["params"]).shape == (3, 1)


def test_bad_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(S.SurrogateError, match="manifest.json"):
        Benchmark("s", surrogates=tmp_path).columns()
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 99, "surrogates": {}}))
    with pytest.raises(S.SurrogateError, match="schema_version"):
        Benchmark("s", surrogates=tmp_path).columns()


@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_many_random_archs_give_positive_finite_predictions(fitted, space):
    _, out, _ = fitted
    b = Benchmark(space, surrogates=out)
    X = b.space.sample_features(20_000, seed=11)
    v = b.evaluate(X, b.columns())
    assert np.all(np.isfinite(v)) and np.all(v > 0)
    v = b.evaluate(X, b.columns(), noise=True, seed=1)
    assert np.all(np.isfinite(v)) and np.all(v > 0)


def test_prediction_tracks_truth_beyond_the_training_set(fitted):
    _, out, _ = fitted
    b = Benchmark("s", surrogates=out)
    X = b.space.sample_features(3000, seed=99)
    pred = b.evaluate(X, ["latency_ms@testdev"])[:, 0]
    truth = true_latency(X, "s")
    assert np.median(np.abs(pred / truth - 1)) < 0.08


@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_shipped_surrogates_give_positive_finite_predictions(space):
    b = Benchmark(space)
    cols = [c for c in b.columns()]
    X = b.space.sample_features(20_000, seed=12)
    v = b.evaluate(X, cols, noise=True, seed=0)
    assert np.all(np.isfinite(v)) and np.all(v > 0)


# ---- serving equals xgboost ---------------------------------------------------------------------------
def _assert_served_equals_xgboost(root, space, n=10_000):
    """Serving evaluates the saved trees in numpy; xgboost's own predictor on the same files (what
    served batches above 64 rows before) is the truth: means, noise scales and intervals within
    1e-6 relative on n sampled architectures."""
    from hwgptbench.surrogates.design import baseline_matrix
    from hwgptbench.surrogates.store import read_verified

    b = Benchmark(space, surrogates=root)
    X = b.space.sample_features(n, seed=21)
    checked = 0
    for col, e in b._store.entries(space).items():
        if e.get("alias_of"):
            continue
        s = b._store.get(space, col)
        D = S.design_matrix(X, space, e["derived_features_at"]["batch"], e["derived_features_at"]["seq"])

        def xgb_margin(key, margin):
            bst = xgb.Booster(model_file=bytearray(read_verified(root, e["files"][key])))
            if bst.num_boosted_rounds() == 0:             # before: the margin itself, not rounded
                return margin
            return bst.inplace_predict(D, base_margin=margin.astype(np.float32)).astype(np.float64)

        mu = xgb_margin("ubj", baseline_matrix(D, s.n_raw) @ s.coef)
        np.testing.assert_allclose(b.evaluate(X, [col])[:, 0], np.exp(mu), rtol=1e-6)
        if s.stochastic:
            log_s = xgb_margin("noise_ubj", np.full(len(D), s.noise_base))
            np.testing.assert_allclose(np.exp(s.log_noise_scale(D)), np.exp(log_s), rtol=1e-6)
            sc = np.sqrt(np.exp(log_s) ** 2 + s.tau ** 2)
            lo, hi = s.interval(D)
            np.testing.assert_allclose(lo, np.exp(mu + s.q_lo * sc), rtol=1e-6)
            np.testing.assert_allclose(hi, np.exp(mu + s.q_hi * sc), rtol=1e-6)
        checked += 1
    return checked


@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_shipped_predictions_equal_xgboost(space):
    from hwgptbench.paths import surrogates_dir
    assert _assert_served_equals_xgboost(surrogates_dir(), space) >= 1


def test_fitted_predictions_with_trees_equal_xgboost(fitted):
    _, out, manifest = fitted
    assert any(e["boosting_rounds"] or e["noise_boosting_rounds"] for e in manifest["surrogates"].values())
    for space in ("s", "m", "l"):
        assert _assert_served_equals_xgboost(out, space, n=3000) >= 1
