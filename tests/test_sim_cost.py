"""Simulated cost per evaluation: measured from the tables' timestamps, estimated from FLOPs."""
import dataclasses

import numpy as np
import pytest

from hwgptbench.moo import get_problem
from hwgptbench.moo.sim_cost import SimulatedCost, simulated_cost
from hwgptbench.paths import data_dir
from hwgptbench.tables import read_table, write_table
from moo_fixtures import fidelity_problem

LATENCY = "s:-params,latency_ms@cpu_xeon_2c"


def test_measurement_cost_comes_from_the_tables_timestamps():
    c = SimulatedCost(LATENCY)
    line = c.sources["measure"]["devices"]["cpu_xeon_2c"]
    assert c.sources["measure"]["source"] == "measured" and c.sources["train"]["source"] == "none"
    # the protocol times 1 warm-up + 5 forwards per architecture: a row cannot take less, and the
    # shipped table's rows took about that (model building and the table write are small)
    assert 6.0 <= line["slope"] < 7.0 and line["median_rel_error"] < 0.05 and line["rows"] > 900
    P = c.problem
    X = P.space.sample_features(200, seed=0)
    seconds = c(X)
    assert np.all(seconds > 0) and np.allclose(seconds, simulated_cost(P, X))
    latency_s = P.raw(X)[:, 1] / 1000
    assert np.allclose(seconds, line["intercept_s"] + line["slope"] * latency_s)


def test_fit_recovers_a_known_line_and_skips_pauses(tmp_path, monkeypatch):
    t = read_table(data_dir() / "s" / "cpu_xeon_2c.h5")
    latency_s = np.nanmean(t.raw["latency_ms"], axis=1) / 1000
    rows = 0.25 + 7.5 * latency_s                        # seconds each row took, by construction
    rows[100] += 3600.0                                  # an hour's pause before row 100 (a resumed run)
    at = 1.7e9 + np.cumsum(rows)
    order = np.random.default_rng(0).permutation(len(t))     # rows stored out of time order
    write_table(dataclasses.replace(
        t, arch_ids=[t.arch_ids[i] for i in order], index=t.index[order],
        raw={m: a[order] for m, a in t.raw.items()}, extra={"measured_at": at[order]}),
        tmp_path / "s" / "cpu_xeon_2c.h5")
    monkeypatch.setenv("HWGPTBENCH_DATA", str(tmp_path))
    line = SimulatedCost(LATENCY).sources["measure"]["devices"]["cpu_xeon_2c"]
    assert line["intercept_s"] == pytest.approx(0.25, abs=1e-6)
    assert line["slope"] == pytest.approx(7.5, rel=1e-6)
    assert line["rows"] == len(t) - 2                    # the first row has no interval; the pause is dropped


def test_protocol_2_rows_cost_all_their_visits():
    """A protocol-2 table visits each architecture `rounds` times, in rounds over blocks: the cost
    of measuring its rows adds up to the wall time its blocks really took (first to last stamp)."""
    dev = "cpu_xeon_f6m207_2c"
    t = read_table(data_dir() / "s" / f"{dev}.h5")
    proto = t.provenance["protocol"]
    line = SimulatedCost(f"s:-params,latency_ms@{dev}").sources["measure"]["devices"][dev]
    assert line["source"] == "measured" and line["visits_per_row"] == proto["rounds"] == 3
    latency_s = np.nanmean(t.raw["latency_ms"], axis=1) / 1000
    predicted = np.sum(line["intercept_s"] + line["slope"] * latency_s)
    b = proto["block"]
    spans = [t.extra["last_visit_at"][k:k + b].max() - t.extra["measured_at"][k:k + b].min()
             for k in range(0, len(t), b)]
    assert predicted == pytest.approx(sum(spans), rel=0.1)


def test_device_without_a_table_is_an_estimate(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGPTBENCH_DATA", str(tmp_path))
    c = SimulatedCost(LATENCY)
    assert c.sources["measure"]["source"] == "estimate"
    line = c.sources["measure"]["devices"]["cpu_xeon_2c"]
    assert (line["intercept_s"], line["slope"]) == (0.0, 6.0)      # warm-up 1 + repeats 5


def test_training_is_an_estimate_that_grows_with_fidelity():
    P = fidelity_problem()
    c = SimulatedCost(P)
    assert c.sources["train"]["source"] == c.sources["evaluate"]["source"] == "estimate"
    assert c.sources["measure"]["source"] == "none"
    X = P.space.encode([P.space.largest()])
    # benchmarks.md: the largest s network's forward is 4.67 TFLOP at batch 16 x 1024, so training it
    # on 4200 x 16 x 1024 tokens (x3 for the backward) at 15% of 989 TFLOP/s takes ~396.6 s
    full = c.components(X)["train"][0]
    assert full == pytest.approx(4200 * 3 * 4.67e12 / (0.15 * 989e12), rel=2e-3)
    assert c.components(X, 25)["train"][0] == pytest.approx(full / 4)
    ev = c.components(X)["evaluate"][0]
    assert ev == pytest.approx(4.67e12 / 16 / 1024 * 65536 / (0.15 * 989e12), rel=2e-3)
    assert np.allclose(c.elapsed(X)[0], [full * p / 100 + k * ev for k, p in enumerate((25, 50, 75, 100), 1)])
    assert c(X, 50)[0] == pytest.approx(full / 2 + ev)


def test_closed_form_objectives_cost_nothing_and_bad_input_is_named():
    c = SimulatedCost("s:-params,flops")
    X = c.problem.space.sample_features(5, seed=1)
    assert np.all(c(X) == 0) and c.sources["measure"]["source"] == "none"
    with pytest.raises(ValueError, match="fidelity"):
        c(X, fidelity=50)
    with pytest.raises(ValueError, match="train_tokens"):
        SimulatedCost("s:-params,flops", train_tokens=-1)
    bad = X.copy()
    bad[0, 1] = 9
    with pytest.raises(ValueError, match="n_layer"):
        c(bad)
    assert get_problem(LATENCY).fidelities == () and SimulatedCost(LATENCY).fidelities == (100,)
