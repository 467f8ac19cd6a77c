"""The HW-GPT-Bench facade: its README example, result shapes and keys, errors."""
import numpy as np
import pytest
from surrogate_fixtures import small_surrogates  # noqa: F401  (fixture)

from hwgptbench import cost, get_space
from hwgptbench.compat import HWG_DEVICES, HWGPT


@pytest.fixture
def api(small_surrogates, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HWGPTBENCH_SURROGATES", str(small_surrogates))
    return HWGPT(search_space="s", use_supernet_surrogate=False)


def test_readme_example(api):
    """HW-GPT-Bench's README example, line by line; only its device name is one we serve."""
    device = api.devices[0]
    random_arch = api.sample_arch()                       # sample random arch
    api.set_arch(random_arch)                             # set arch
    results = api.query()                                 # query all for the sampled arch
    assert {"latencies", "flops", "params", "float16_memory", "bfloat16_memory"} <= set(results)
    with pytest.raises(ValueError, match="energies"):     # no energy meter on this device
        api.query(metric="energies")
    rtx = api.query(device=device)                        # query device
    assert list(rtx["latencies"]) == [device]
    with pytest.raises(ValueError, match=r"'rtx2080' is not served.*available: \['testdev'\]"):
        api.query(device="rtx2080")
    perplexity_mlp = api.query(metric="perplexity", predictor="mlp")   # HW-GPT-Bench's own MLP
    assert set(perplexity_mlp) == {"perplexity"} and 20 < perplexity_mlp["perplexity"] < 45
    assert results["perplexity"] == perplexity_mlp["perplexity"]
    ours = api.query(metric="perplexity", predictor="supernet")["perplexity"]   # the fixture's table
    assert ours == api.bench.query(api._arch, metrics=["perplexity"])["perplexity"] != perplexity_mlp["perplexity"]


def test_result_shapes_and_values(api):
    cfg = api.sample_arch()
    assert set(cfg) >= {"sample_embed_dim", "sample_n_layer", "sample_mlp_ratio", "sample_n_head", "sample_bias"}
    assert cfg["sample_bias"] in ("True", "False")
    X = get_space("s").encode([cfg])
    r = api.query()
    assert r["params"] == int(cost.params(X, "s")[0]) == api.get_params()
    assert r["flops"] == int(cost.flops(X, "s", 1, 1024)[0]) == api.get_flops()
    assert isinstance(r["params"], int) and isinstance(r["flops"], int)
    # HW-GPT-Bench's memory MLPs (tests/test_sources.py checks them against its own code)
    mem = api.bench.query([cfg], metrics=["memory_MB_hwgpt_float16", "memory_MB_hwgpt_bfloat16"]).iloc[0]
    assert r["float16_memory"] == mem.iloc[0] and r["bfloat16_memory"] == mem.iloc[1]
    lat = api.query(metric="latencies", device="testdev")
    assert list(lat) == ["latencies"] and list(lat["latencies"]) == ["testdev"]
    assert lat["latencies"]["testdev"] > 0
    assert api.query(hw_metric="params") == {"params": r["params"]}         # HWG's older keyword


def test_set_arch_accepts_hwg_dicts(api):
    padded = {"sample_embed_dim": 384, "sample_n_layer": 10, "sample_mlp_ratio": [3] * 12,
              "sample_n_head": [8] * 12, "sample_bias": "False", "sample_layer_indices": list(range(10))}
    api.set_arch(padded)
    assert api.config == padded
    v = api.query(metric="latencies")["latencies"]["testdev"]
    api.set_arch({**padded, "sample_mlp_ratio": [3] * 10, "sample_n_head": [8] * 10})
    assert api.query(metric="latencies")["latencies"]["testdev"] == v


def test_errors(api):
    with pytest.raises(ValueError, match="set arch"):
        api.query()
    with pytest.raises(ValueError, match=r"n_head\[0\]: 5 is not allowed"):
        api.set_arch({"sample_embed_dim": 384, "sample_n_layer": 10, "sample_mlp_ratio": [3] * 10,
                      "sample_n_head": [5] * 10, "sample_bias": "False"})
    api.sample_arch()
    with pytest.raises(ValueError, match="metric: unknown 'latency'"):
        api.query(metric="latency")
    m = HWGPT("m")
    m.sample_arch()
    with pytest.raises(ValueError, match="no perplexity table"):
        m.query(metric="perplexity", predictor="supernet")
    with pytest.raises(ValueError, match="use_supernet_surrogate"):
        HWGPT("s", use_supernet_surrogate=True)
    assert len(HWG_DEVICES) == 13


def test_seeded_sampling_and_noise(small_surrogates, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HWGPTBENCH_SURROGATES", str(small_surrogates))
    a, b = HWGPT("s", seed=3), HWGPT("s", seed=3)
    assert [a.sample_arch() for _ in range(3)] == [b.sample_arch() for _ in range(3)]
    na, nb = HWGPT("s", noise=True, seed=4), HWGPT("s", noise=True, seed=4)
    assert na.sample_arch() == nb.sample_arch()
    draws = [na.query(metric="latencies")["latencies"]["testdev"] for _ in range(5)]
    assert draws == [nb.query(metric="latencies")["latencies"]["testdev"] for _ in range(5)]
    assert len(set(draws)) == 5


def test_decode_is_served_by_the_benchmark_the_facade_and_as_an_objective():
    """The shipped store serves decode_ms (CPU protocol 2 table) everywhere a column goes."""
    from hwgptbench import Benchmark
    from hwgptbench.compat import HWGPT
    from hwgptbench.moo import get_problem

    sp = get_space("s")
    a = sp.largest()
    bench = Benchmark("s")
    col = "decode_ms@cpu_xeon_f6m207_2c"
    one = bench.query(a, metrics=["decode_ms"])
    assert col in one and one[col] > 0
    assert bench.metrics()[col]["quality"]["n_test"] > 0            # held-out quality in the manifest
    api = HWGPT("s")
    api.set_arch(a.to_hwg_dict())
    got = api.query(metric="decode_latencies")["decode_latencies"]["cpu_xeon_f6m207_2c"]
    assert got == pytest.approx(bench.evaluate(sp.encode([a]), [col])[0, 0])
    assert "decode_latencies" in api.query()
    P = get_problem(f"s:-params,{col}")
    F = P(sp.encode([sp.smallest(), a]))
    assert F.shape == (2, 2) and np.all(np.isfinite(F))
