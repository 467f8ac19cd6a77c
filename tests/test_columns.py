"""Column names: parse/format, the fidelity alias rule, and a multi-fidelity problem built from the
real store (a real-format perplexity table, real fitted surrogates, the real Benchmark)."""
import warnings

import numpy as np
import pytest

from hwgptbench import Benchmark, cost, get_space
from hwgptbench.columns import Column, fidelities, fidelity_aliases, resolve

FIDS = (25, 50, 75, 100)


@pytest.mark.parametrize("text,metric,device,fidelity", [
    ("params", "params", None, None),
    ("memory_MB_analytic", "memory_MB_analytic", None, None),
    ("latency_ms@h100", "latency_ms", "h100", None),
    ("energy_J@cpu_xeon_2c", "energy_J", "cpu_xeon_2c", None),
    ("perplexity_f25", "perplexity", None, 25),
    ("perplexity", "perplexity", None, None),
    ("accuracy_f100@gpu-1.a", "accuracy", "gpu-1.a", 100),
])
def test_parse_and_format_round_trip(text, metric, device, fidelity):
    c = Column.parse(text)
    assert (c.metric, c.device, c.fidelity) == (metric, device, fidelity)
    assert str(c) == text and Column.parse(c) is c
    assert c.at(50).fidelity == 50 and c.at(None).fidelity is None and c.at(50).device == device
    assert c.quantity == text.split("@")[0]


@pytest.mark.parametrize("bad", ["", "@h100", "latency_ms@", "a b", "1x", "x@a@b", " params",
                                 "perplexity_f0", "perplexity_f101", "lat-ency"])
def test_bad_names_are_clear_errors(bad):
    with pytest.raises(ValueError, match="column"):
        Column.parse(bad)


def test_constructor_checks_fields():
    with pytest.raises(ValueError, match="fidelity"):
        Column("perplexity_f25")                        # the fidelity goes in its field
    with pytest.raises(ValueError, match="fidelity"):
        Column("perplexity", None, True)
    with pytest.raises(TypeError):
        Column.parse(3)


def test_alias_rule():
    cols = ["params", "perplexity_f50", "perplexity_f100", "perplexity_f25", "accuracy_f25", "latency_ms@h100"]
    assert fidelity_aliases(cols) == {"accuracy": "accuracy_f25", "perplexity": "perplexity_f100"}
    assert resolve("perplexity", cols) == "perplexity_f100"
    assert resolve("perplexity", cols + ["perplexity"]) == "perplexity"     # a served bare name wins
    assert resolve("latency_ms@h100", cols) == "latency_ms@h100" and resolve("energy_J", cols) is None
    assert fidelities("perplexity", cols) == (25, 50, 100) == fidelities("perplexity_f50", cols)
    assert fidelities("params", cols) == ()


# ---- the real store ---------------------------------------------------------------------------------
def true_perplexity(X, percent):
    """Made-up but smooth: falls with parameters and with training progress."""
    return 15 + 2000 * (cost.params(X, "s") / 1e6) ** -0.5 * (percent / 100) ** -0.4


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    """A perplexity table in the real format (as `evaluate.perplexity_table` writes it) of 60
    profiling-set architectures, fitted into a store by the real `fit_all`."""
    pytest.importorskip("xgboost")
    from hwgptbench.profiling.profiling_set import profiling_set
    from hwgptbench.surrogates import FitSettings, fit_all
    from hwgptbench.tables import Table, write_table

    root = tmp_path_factory.mktemp("real_store")
    archs = profiling_set("s", 60)
    X = get_space("s").encode(archs)
    raw = {}
    for p in FIDS:
        raw[f"perplexity_f{p}"] = true_perplexity(X, p)[:, None]
        raw[f"accuracy_f{p}"] = (0.2 + 0.1 * p / 100 + 1e-9 * cost.params(X, "s"))[:, None]
    table = Table("perplexity", "s", "perplexity", [a.id for a in archs], np.arange(60), raw,
                  {m: "1" for m in raw}, {m: "measured" for m in raw}, {"fidelities": {}})
    write_table(table, root / "data" / "s" / "perplexity.h5")
    fit_all(root / "data", root / "surrogates", FitSettings(rounds_grid=(0, 10), folds=3), log=lambda *a: None)
    return root / "surrogates"


def test_real_perplexity_problem_has_fidelities_and_runs_moasha(real_store):
    pytest.importorskip("moocore")
    from hwgptbench.moo import Problem, make_optimizer

    bench = Benchmark("s", surrogates=real_store)
    assert "perplexity" in bench.columns()                  # the alias the real store adds
    P = Problem("s", "perplexity,flops", benchmark=bench)
    assert P.columns == ("perplexity", "flops")
    assert P.fidelities == FIDS
    X = P.space.sample_features(200, seed=0)
    R = {p: P.raw(X, fidelity=p)[:, 0] for p in FIDS}
    for p in FIDS:                                          # each fidelity is its own fitted column
        assert np.median(np.abs(R[p] / true_perplexity(X, p) - 1)) < 0.05
    assert np.array_equal(P.raw(X)[:, 0], R[100])            # perplexity = the last fidelity
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)        # no shipped bounds for this problem
        opt = make_optimizer("moasha", P, seed=0, batch_size=8)
        asked = []
        for _ in range(6):
            b = opt.ask()                                   # a Batch: rows and their fidelities
            Xb, fid = b.X, np.asarray(b.fidelity)
            F = np.empty((len(Xb), P.n_obj))
            for f in np.unique(fid):
                F[fid == f] = P(Xb[fid == f], fidelity=int(f))
            opt.tell(b, F)
            asked += fid.tolist()
    assert set(asked) >= {25, 50} and asked.count(25) > asked.count(50)       # promotions happen


def test_compat_serves_the_alias(real_store, monkeypatch):
    from hwgptbench.compat import HWGPT

    api = HWGPT("s", surrogates=real_store)
    api.set_arch(get_space("s").largest().to_hwg_dict())
    got = api.query(metric="perplexity", predictor="supernet")["perplexity"]      # ours, not HW-GPT-Bench's
    X = get_space("s").encode([get_space("s").largest()])
    assert got == pytest.approx(Benchmark("s", surrogates=real_store).evaluate(X, ["perplexity_f100"])[0, 0])
