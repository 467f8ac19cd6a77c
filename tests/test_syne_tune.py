"""syne-tune adapter: short simulated experiments end to end, checked against the problem itself."""
import numpy as np
import pytest

pytest.importorskip("syne_tune")
pytest.importorskip("huggingface_hub")       # syne-tune's blackbox repository imports it

from moo_fixtures import fidelity_problem  # noqa: E402
from syne_tune.optimizer.baselines import ASHA, REA  # noqa: E402
from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA  # noqa: E402
from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler  # noqa: E402

from hwgptbench.moo import get_problem  # noqa: E402
from hwgptbench.moo.runner import final_indicators  # noqa: E402
from hwgptbench.moo.sim_cost import SimulatedCost  # noqa: E402
from hwgptbench.moo.syne_tune import HWGPTBlackbox, tune  # noqa: E402
from hwgptbench.space import Arch  # noqa: E402

LATENCY = "s:-params,latency_ms@cpu_xeon_2c"


def _archs(df, P):
    """Feature rows from the reported arch ids (not from the adapter's own decoding)."""
    return P.space.encode([Arch.from_id(a) for a in df["arch_id"]])


def _mo_random(bb, seed=0):
    return SingleFidelityScheduler(bb.configuration_space, metrics=bb.metrics, searcher="random_search",
                                   random_seed=seed, searcher_kwargs={"random_seed": seed})


def test_random_search_reports_the_problem_and_its_cost(tmp_path):
    bb = HWGPTBlackbox(LATENCY)
    P = bb.problem
    df = tune(bb, _mo_random(bb), n_workers=1, max_num_evaluations=30, out=tmp_path, poll_s=0.02)
    assert len(df) >= 30 and (tmp_path / "results.csv.zip").exists()
    X = _archs(df, P)
    R = P.raw(X)
    assert np.allclose(df["params"], -R[:, 0]) and np.allclose(df["latency_ms@cpu_xeon_2c"], R[:, 1])
    assert np.allclose(df["f:-params"], P.normalise(R)[:, 0])
    cost = SimulatedCost(P)(X)
    assert np.all(cost > 0.5) and np.allclose(df["elapsed_time_s"], cost)
    # one worker: each result arrives its own cost after the previous one, plus syne-tune's
    # simulated event delays (0.05 s to start, 0.05 s to report) and the wait for the tuner's
    # next look (< poll_s = 0.02 s) after the previous trial completed (0.05 s after its report)
    t = df["sim_time_s"].to_numpy()
    assert t[0] == pytest.approx(cost[0] + 0.1)
    gap = np.diff(t) - cost[1:]
    assert np.all(gap >= 0.1 - 1e-9) and np.all(gap < 0.1 + 0.05 + 0.02 + 1e-9)
    ind = final_indicators(df, problems=[P])
    assert len(ind) == 1 and 0 < ind["hv"].iloc[0] < np.prod(P.ref_point)


def test_configurations_map_to_architectures_honestly():
    bb = HWGPTBlackbox(LATENCY)
    sp = bb.problem.space
    assert set(bb.configuration_space) == set(sp.feature_names)
    a = sp.smallest()                                          # 10 layers of 12
    conf = bb.configuration(a)
    assert conf["mlp_ratio_11"] == a.mlp_ratio[-1] and conf["n_head_10"] == a.n_head[-1]
    conf.update(mlp_ratio_11=4, n_head_10=12)                  # past n_layer: ignored
    assert sp.decode(bb.features(conf))[0] == a
    conf["n_head_3"] = 5
    with pytest.raises(ValueError, match="n_head"):
        bb.features(conf)
    del conf["embed_dim"]
    with pytest.raises(ValueError, match="embed_dim"):
        bb.features(conf)
    with pytest.raises(ValueError, match="fidelity"):
        bb.objective_function(bb.configuration(a), fidelity=50)


def _morea(bb, seed):
    return SingleFidelityScheduler(bb.configuration_space, metrics=bb.metrics, searcher="regularized_evolution",
                                   random_seed=seed, searcher_kwargs={"random_seed": seed, "population_size": 8,
                                                                      "sample_size": 3})


def test_same_seed_same_run_with_asynchronous_workers():
    bb = HWGPTBlackbox(LATENCY)
    state = np.random.get_state()
    runs = [tune(bb, _morea(bb, 3), n_workers=3, max_wallclock_time=60.0, seed=3) for _ in range(2)]
    assert len(runs[0]) > 40
    assert runs[0].equals(runs[1])
    assert np.array_equal(np.random.get_state()[1], state[1])      # the caller's RNG is left alone
    other = tune(bb, _morea(bb, 4), n_workers=3, max_wallclock_time=60.0, seed=4)
    assert other["arch_id"].tolist() != runs[0]["arch_id"].tolist()
    t = runs[0]["sim_time_s"]
    assert t.is_monotonic_increasing and (t > 60.0).sum() <= 3       # stops at the first look past 60 s
    # three workers overlap: the experiment takes less simulated time than the sum of its costs
    assert t.iloc[-1] < runs[0]["elapsed_time_s"].sum() / 2
    single = tune(bb, REA(bb.configuration_space, metric="latency_ms@cpu_xeon_2c", random_seed=3,
                          population_size=5, sample_size=3), max_num_evaluations=15)
    assert single["latency_ms@cpu_xeon_2c"].iloc[10:].min() <= single["latency_ms@cpu_xeon_2c"].iloc[:5].min()


def test_multi_fidelity_schedulers_on_a_fidelity_axis():
    P = fidelity_problem()
    bb = HWGPTBlackbox(P)
    assert list(bb.fidelity_values) == [25, 50, 75, 100]
    for scheduler in (MOASHA(bb.configuration_space, metrics=bb.metrics, time_attr="fidelity", max_t=100,
                             grace_period=25, reduction_factor=2, random_seed=0),
                      ASHA(bb.configuration_space, metric="perplexity", time_attr="fidelity", max_t=100,
                           grace_period=25, reduction_factor=2, random_seed=0)):
        df = tune(bb, scheduler, n_workers=2, max_num_evaluations=40)
        assert set(df["fidelity"]) <= {25, 50, 75, 100}
        assert (df["fidelity"] == 25).sum() > (df["fidelity"] == 100).sum() > 0   # early stopping
        X = _archs(df, P)
        elapsed = SimulatedCost(P).elapsed(X)
        for f in (25, 50, 75, 100):
            rows = (df["fidelity"] == f).to_numpy()
            assert np.allclose(df.loc[rows, "perplexity_f100"], P.raw(X[rows], fidelity=f)[:, 0])
            assert np.allclose(df.loc[rows, "elapsed_time_s"], elapsed[rows, f // 25 - 1])
        # a trial reports its fidelities in order, each later and costlier than the one before
        for _, g in df.groupby("trial_id"):
            assert g["fidelity"].tolist() == [25, 50, 75, 100][:len(g)]
            assert g["elapsed_time_s"].is_monotonic_increasing


def test_noisy_problem_is_seeded_per_architecture():
    P = get_problem(LATENCY, noise=True)
    a, b = HWGPTBlackbox(P, seed=1), HWGPTBlackbox(P, seed=2)
    conf = a.configuration(P.space.largest())
    v1 = a.objective_function(conf, fidelity=100)["latency_ms@cpu_xeon_2c"]
    assert v1 == a.objective_function(conf, fidelity=100)["latency_ms@cpu_xeon_2c"]
    assert v1 != b.objective_function(conf, fidelity=100)["latency_ms@cpu_xeon_2c"]
    assert v1 == b.objective_function(conf, fidelity=100, seed=1)["latency_ms@cpu_xeon_2c"]


def test_bad_blackbox_and_tune_arguments_are_clear_errors():
    from hwgptbench.moo.syne_tune import HWGPTBlackbox, tune
    with pytest.raises(ValueError, match="seed: expected an int >= 0"):
        HWGPTBlackbox("s:-params,flops", seed=-1)
    with pytest.raises(TypeError, match="cost: expected a SimulatedCost"):
        HWGPTBlackbox("s:-params,flops", cost="fast")
    with pytest.raises(TypeError, match="scheduler: expected a syne-tune scheduler"):
        tune(HWGPTBlackbox("s:-params,flops"), "rs", max_num_evaluations=5)
