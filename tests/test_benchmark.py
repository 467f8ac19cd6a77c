"""Benchmark: exact columns, query shapes and inputs, errors, noise seeding, lazy loading, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from surrogate_fixtures import small_surrogates  # noqa: F401  (fixture)

from hwgptbench import Benchmark, cost, get_space
from hwgptbench.benchmark import EXACT_COLUMNS
from hwgptbench.features import encode_archs, encode_ids
from hwgptbench.cli import main as cli_main

COL = "latency_ms@testdev"


@pytest.fixture
def bench(small_surrogates):  # noqa: F811
    return Benchmark("s", surrogates=small_surrogates)


@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_exact_columns_equal_cost_model(space, tmp_path):
    b = Benchmark(space, surrogates=tmp_path)          # no surrogates needed for exact columns
    sp = b.space
    X = np.vstack([sp.encode([sp.largest(), sp.smallest()]), sp.sample_features(300, seed=1)])
    v = b.evaluate(X, list(EXACT_COLUMNS))
    assert v.dtype == np.float64 and v.shape == (len(X), 3)
    assert np.array_equal(v[:, 0], cost.params(X, space).astype(np.float64))
    assert np.array_equal(v[:, 1], cost.flops(X, space, 1, cost.BLOCK_SIZE).astype(np.float64))
    assert np.array_equal(v[:, 2], cost.memory_mb(X, space, 1, cost.BLOCK_SIZE, "bfloat16"))


def test_smallest_s_params_by_hand(tmp_path):
    # E=192, L=10, r=2, h=4 (attention width 256), no bias:
    # per layer 4E (2 LayerNorms) + 4*256*E (qkv + proj) + 2*2*E*E (MLP); plus V*E + 2E
    E, L = 192, 10
    want = 50304 * E + 2 * E + L * (4 * E + 4 * 256 * E + 4 * E * E)
    got = Benchmark("s", surrogates=tmp_path).query(get_space("s").smallest(), metrics=["params"])
    assert got == {"params": want}


@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_vectorised_encode_equals_space_encode(space):
    sp = get_space(space)
    archs = [sp.largest(), sp.smallest()] + sp.sample(500, seed=2)
    assert np.array_equal(encode_archs(sp, archs), sp.encode(archs))


@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_bulk_id_parsing_equals_arch_from_id(space):
    sp = get_space(space)
    archs = [sp.largest(), sp.smallest()] + sp.sample(300, seed=3)
    assert np.array_equal(encode_ids(sp, [a.id for a in archs]), sp.encode(archs))
    good = sp.smallest().id
    for bad in (good.replace("-False", "-false"), good.replace(f"gpt-{space}-", "gpt-x-"),
                good + "-4", " " + good, good.replace(f"-{sp.smallest().n_layer}-", f"-+{sp.smallest().n_layer}-", 1),
                good.replace("-2-", "-5-", 1)):
        assert encode_ids(sp, [good, bad]) is None          # left to Arch.from_id and its errors
    b = Benchmark(space, surrogates="/nonexistent")
    with pytest.raises(ValueError, match="bias"):
        b.query([good, good.replace("-False", "-false")], metrics=["params"])
    with pytest.raises(ValueError, match="mlp_ratio"):
        b.query([good, good.replace(f"-{min(sp.embed_dims)}-2-", f"-{min(sp.embed_dims)}-5-", 1)],
                metrics=["params"])


def test_query_shapes_and_equivalent_inputs(bench):
    archs = bench.sample(20, seed=3)
    df = bench.query(archs)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == bench.columns() and len(df) == 20
    assert df["params"].dtype == np.int64 and (df[COL] > 0).all()
    for other in ([a.id for a in archs], [a.to_hwg_dict() for a in archs], bench.space.encode(archs)):
        pd.testing.assert_frame_equal(bench.query(other), df)
    one = bench.query(archs[0])
    assert isinstance(one, dict) and set(one) == set(df.columns)
    assert one[COL] == pytest.approx(df[COL][0], rel=1e-5)


def test_small_and_large_batches_agree(bench):
    """Predictions do not depend on how many rows are asked at once."""
    archs = bench.sample(200, seed=4)
    big = bench.evaluate(archs, [COL])[:, 0]
    small = np.concatenate([bench.evaluate(archs[i:i + 50], [COL])[:, 0] for i in range(0, 200, 50)])
    np.testing.assert_allclose(small, big, rtol=1e-5)


def test_select_metrics_devices_and_interval(bench):
    a = bench.sample(3, seed=5)
    assert list(bench.query(a, metrics=["latency_ms"]).columns) == [COL]
    assert list(bench.query(a, metrics=[COL, "params"]).columns) == [COL, "params"]
    assert list(bench.query(a, devices=["testdev"]).columns) == bench.columns()
    d = bench.query(a, metrics="latency_ms", interval=True)
    assert list(d.columns) == [COL, f"{COL}:lo90", f"{COL}:hi90"]
    assert (d[f"{COL}:lo90"] < d[COL]).all() and (d[COL] < d[f"{COL}:hi90"]).all()


def test_unknown_device_metric_and_unavailable_metric_errors(bench):
    a = bench.sample(1, seed=6)
    with pytest.raises(ValueError, match=r"devices: unknown \['h100'\].*available: \['testdev'\]"):
        bench.query(a, devices=["h100"])
    with pytest.raises(ValueError, match="'latency' is not available.*latency_ms"):
        bench.query(a, metrics=["latency"])
    with pytest.raises(ValueError, match="energy_J@testdev: no finite measurement"):
        bench.query(a, metrics=["energy_J"])
    with pytest.raises(ValueError, match="columns: unknown"):
        bench.evaluate(a, ["latency_ms@h100"])


def test_bad_architectures_are_clear_errors(bench):
    with pytest.raises(ValueError, match="embed_dim"):
        bench.query({"sample_embed_dim": 100, "sample_n_layer": 10, "sample_mlp_ratio": [2] * 10,
                     "sample_n_head": [4] * 10, "sample_bias": "True"})
    with pytest.raises(ValueError, match="space"):
        bench.query(get_space("m").smallest())
    with pytest.raises(ValueError, match="features"):
        bench.query(np.zeros((2, 5), dtype=np.int64))
    X = bench.space.sample_features(2, seed=0)
    X[1, 3 + bench.space.max_layers] = 5
    with pytest.raises(ValueError, match="n_head"):
        bench.query(X)
    with pytest.raises(TypeError):
        bench.query(3.5)


def test_noise_is_seeded_and_per_column(bench):
    a = bench.sample(50, seed=7)
    mean = bench.query(a, metrics=[COL])
    n1 = bench.query(a, noise=True, seed=1)
    assert n1.equals(bench.query(a, noise=True, seed=1))
    assert not n1[COL].equals(bench.query(a, noise=True, seed=2)[COL])
    assert not n1[COL].equals(mean[COL])
    pd.testing.assert_series_equal(bench.query(a, metrics=[COL], noise=True, seed=1)[COL], n1[COL])
    assert n1["params"].equals(bench.query(a)["params"])           # exact columns stay exact


def test_metrics_and_devices_describe_provenance(bench):
    m = bench.metrics()
    assert m["params"]["provenance"] == "analytic" and m["params"]["estimator"] == "closed-form"
    assert m[COL]["provenance"] == "measured" and m[COL]["unit"] == "ms" and m[COL]["device"] == "testdev"
    assert "kendall_tau" in m[COL]["quality"]
    d = bench.devices()
    assert list(d) == ["testdev"] and d["testdev"]["columns"] == [COL]
    assert d["testdev"]["protocol"]["seq"] == 256 and "energy_J@testdev" in d["testdev"]["unavailable"]


def test_surrogates_load_lazily_and_once(bench):
    assert bench._store._manifest is None and not bench._store._models
    bench.query(bench.sample(2, seed=8), metrics=["params"])
    assert not bench._store._models
    bench.query(bench.sample(2, seed=8))
    model = bench._store._models["s:" + COL]
    bench.query(bench.sample(2, seed=9))
    assert bench._store._models["s:" + COL] is model
    assert not Benchmark("s", surrogates=bench._store.root)._store._models     # nothing shared


def test_missing_manifest_means_exact_columns_only(tmp_path):
    b = Benchmark("s", surrogates=tmp_path, sources=())
    assert b.columns() == list(EXACT_COLUMNS) and b.devices() == {}
    # the other sources keep their own columns: they do not depend on our surrogates' manifest
    assert Benchmark("s", surrogates=tmp_path).columns() == list(EXACT_COLUMNS) + [
        "perplexity_hwgpt", "memory_MB_hwgpt_float16", "memory_MB_hwgpt_bfloat16"]
    with pytest.raises(ValueError, match="manifest.json does not exist"):
        b.evaluate(b.sample(1, seed=0), [COL])


def test_import_stays_light():
    code = ("import sys, hwgptbench; hwgptbench.Benchmark('s');"
            "print([m for m in ('torch', 'pandas', 'xgboost', 'scipy', 'h5py') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_query_path_works_without_fit_libraries(bench):
    """Serving needs numpy, pandas, h5py only: xgboost, scikit-learn and scipy are blocked."""
    code = f"""
import sys
for m in ("xgboost", "sklearn", "scipy"):
    sys.modules[m] = None                       # any import of these now fails
import numpy as np
from hwgptbench import Benchmark
from hwgptbench.cli import main
from hwgptbench.compat import HWGPT
b = Benchmark("s", surrogates={str(bench._store.root)!r})
X = b.space.sample_features(3000, seed=0)
v = b.evaluate(X, b.columns(), noise=True, seed=1)
df = b.query(X[:100], interval=True)
one = b.query(b.sample(1, seed=2)[0], metrics=["latency_ms"])
api = HWGPT("s", surrogates={str(bench._store.root)!r})
api.sample_arch()
assert main(["query", "random", "-n", "2"]) == 0
assert main(["fit-surrogates", "--out", "/nonexistent"]) == 2          # a clear error, not a crash
print("ok", v.shape, df.shape, sorted(one), sorted(api.query()),
      [m for m in ("xgboost", "sklearn", "scipy") if sys.modules.get(m) is not None])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "HWGPTBENCH_SURROGATES": str(bench._store.root)})
    assert out.returncode == 0, out.stderr
    assert "ok (3000, 10) (100, 18)" in out.stdout and out.stdout.strip().endswith("[]"), out.stdout
    assert "needs the 'fit' extra" in out.stderr


def test_cli_query(bench, capsys, monkeypatch):
    monkeypatch.setenv("HWGPTBENCH_SURROGATES", str(bench._store.root))
    assert cli_main(["query", "random", "-n", "3", "--seed", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and rows[0]["arch_id"].startswith("gpt-s-") and rows[0][COL] > 0
    a = bench.sample(1, seed=0)[0]
    assert cli_main(["query", a.id, "--metrics", "params"]) == 0
    assert str(bench.query(a, metrics=["params"])["params"]) in capsys.readouterr().out
    assert cli_main(["query", "random", "--devices", "nope"]) == 2
    assert "available: ['testdev']" in capsys.readouterr().err


def test_cli_fit_surrogates(tmp_path, capsys):
    from surrogate_fixtures import make_data_dir

    data = make_data_dir(tmp_path / "data", {"m": 60})
    assert cli_main(["fit-surrogates", "--data", str(data), "--out", str(tmp_path / "out"), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| m | `latency_ms@testdev` |" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert list(manifest["surrogates"]) == ["m/testdev/latency_ms"]


def test_readme_what_ships_table_is_the_code_s():
    import re
    from pathlib import Path

    from hwgptbench.benchmark import what_ships
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    m = re.search(r"<!-- what-ships:start -->\n(.*?)<!-- what-ships:end -->", text, re.S)
    assert m, "README lacks the what-ships table"
    assert m.group(1) == what_ships(), ("README's what-ships table differs from the code; regenerate it "
                                        "with hwgptbench.benchmark.what_ships()")


@pytest.mark.parametrize("space,metric,needle", [
    ("m", "latency_ms@a100", "'a100' is measured nowhere in this benchmark"),
    ("m", "latency_ms@h200x", "no device 'h200x' in this benchmark: did you mean ['h200']"),
    ("xs", "latency_ms@h100", "'h100' is measured for space(s) ['s', 'm', 'l'], not 'xs'"),
    ("xs", "perplexity_hwgpt", "is served for space(s) ['s', 'm', 'l'] only, not 'xs'"),
    ("s", "perplexity", "'perplexity_hwgpt' (third-party predictor"),
    ("s", "latncy_ms", "did you mean ['latency_ms']"),
])
def test_a_missing_column_says_what_would_serve_it(space, metric, needle):
    from hwgptbench import Benchmark
    with pytest.raises(ValueError) as e:
        Benchmark(space).select([metric])
    assert needle in str(e.value)


def test_a_bare_name_and_its_fidelity_are_one_model_evaluated_once(monkeypatch):
    """`perplexity` is `perplexity_f100` (the last fidelity): equal answers, and the model runs once
    per chunk (counted); with noise, the one's draw is the other's."""
    from hwgptbench.surrogates.serve import MeanGroup
    b = Benchmark("xs")
    X = b.space.sample_features(50, seed=1)
    calls = []
    original = MeanGroup.predict
    monkeypatch.setattr(MeanGroup, "predict", lambda self, *a, **k: calls.append(len(self.surrogates))
                        or original(self, *a, **k))
    df = b.query(X, metrics=["perplexity", "perplexity_f100"])
    assert np.array_equal(df["perplexity"], df["perplexity_f100"]) and calls == [1]
    noisy = b.query(X, metrics=["perplexity", "perplexity_f100"], noise=True, seed=0)
    assert np.array_equal(noisy["perplexity"], noisy["perplexity_f100"])


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_a_bad_surrogate_value_is_an_error_naming_its_column(monkeypatch, bad):
    """The last check before anything is returned: a NaN, negative or infinite value (injected into
    the surrogates' output) raises, naming the column, for one row and many."""
    from hwgptbench.surrogates.serve import MeanGroup
    original = MeanGroup.predict

    def broken(self, designs, log=False):
        out = original(self, designs, log)
        out[0] = np.full_like(out[0], bad)
        return out
    monkeypatch.setattr(MeanGroup, "predict", broken)
    b = Benchmark("xs")
    first = b._plan(b.columns()).means.surrogates[0].column
    for X in (b.space.sample_features(1, seed=0), b.space.sample_features(40, seed=0)):
        with pytest.raises(RuntimeError, match=rf"non-finite or negative predictions in \['{first}'"):
            b.evaluate(X, b.columns())
