"""Bad inputs at the public API, the HW-GPT-Bench facade and the moo problems (issue 11): every
case asserts the exception type AND that the message names the field and what is allowed; silent
wrong numbers are checked against independent truths (Python-int arithmetic of the closed form).
Files and fault injection: tests/test_integrity.py."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgptbench import cost, get_space
from hwgptbench.benchmark import Benchmark
from hwgptbench.compat import HWGPT
from hwgptbench.moo.problem import Problem, parse_objectives
from hwgptbench.tables import load_dataframe
from hwgptbench.validation import check_bool, check_seed, check_str_list

SEED_ALLOWED = r"seed: expected .*int >= 0"
BAD_SEEDS = [-1, 1.5, 2.0, "7", True, np.bool_(False), [1, 2], {"seed": 1}, 1 + 2j]


# ---- seeds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_bad_seed_is_named_everywhere(seed):
    sp, b = get_space("s"), Benchmark("s")
    calls = [lambda: sp.sample(2, seed=seed), lambda: sp.sample_features(2, seed=seed),
             lambda: b.sample(1, seed=seed), lambda: b.evaluate([sp.smallest()], ["params"], seed=seed),
             lambda: HWGPT("s", seed=seed)]
    for call in calls:
        with pytest.raises((TypeError, ValueError), match=SEED_ALLOWED):
            call()


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2 ** 128))
def test_any_int_seed_is_accepted_and_reproducible(seed):
    sp = get_space("m")
    assert np.array_equal(sp.sample_features(3, seed=seed), sp.sample_features(3, seed=seed))
    assert check_seed(np.random.SeedSequence(seed)) is not None


# ---- feature rows: no silent truncation ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["complex", "fraction", "nan", "object"])
def test_feature_rows_that_are_not_integers_are_refused(kind):
    sp = get_space("s")
    X = sp.encode([sp.smallest()])
    bad = {"complex": X + 1j, "fraction": X + 0.25, "nan": np.where(X == X.max(), np.nan, X),
           "object": X.astype(object) + 0.5}[kind]
    with pytest.raises((TypeError, ValueError), match="(features|embed_dim|arch): .*(integers|allowed|expected)"):
        Benchmark("s").evaluate(bad, ["params"])


# ---- cost model: exact integers or a refusal ----------------------------------------------------------
def _truth(arch, batch, seq):
    """FLOPs and memory elements of one architecture in exact Python ints, from the per-layer
    closed form of docs/PROTOCOLS.md section 2 (summed layer by layer, not through the code's sums)."""
    E, V, hs = arch.embed_dim, cost.VOCAB_PADDED, cost.HEAD_SIZE
    per_token = E * V
    for r, h in zip(arch.mlp_ratio, arch.n_head):
        per_token += 4 * hs * h * E + 2 * r * E * E + 2 * hs * h * seq
    flops = 2 * batch * seq * per_token
    block = max(max(2 * E + 7 * hs * h, 3 * E + 2 * r * E) for r, h in zip(arch.mlp_ratio, arch.n_head))
    params = int(cost.params([arch], arch.space)[0])       # checked against torch in test_cost.py
    memory = params + batch * seq * (V + 2 * E + block)
    return flops, memory


INT64_MAX = 2 ** 63 - 1


@settings(max_examples=60, deadline=None)
@given(st.sampled_from("sml"), st.integers(0, 10 ** 6), st.integers(1, 10 ** 13), st.integers(1, 1024))
def test_cost_is_exact_or_refused(space, seed, batch, seq):
    arch = get_space(space).sample(1, seed=seed)[0]
    flops, memory = _truth(arch, batch, seq)
    if flops > INT64_MAX:
        with pytest.raises(ValueError, match=r"batch: .*int64.*allowed: batch <= \d+"):
            cost.flops([arch], space, batch, seq)
    else:
        assert int(cost.flops([arch], space, batch, seq)[0]) == flops
    if memory > INT64_MAX:
        with pytest.raises(ValueError, match=r"batch: .*allowed: batch <= \d+"):
            cost.memory_mb([arch], space, batch, seq, "float32")
    else:
        assert cost.memory_mb([arch], space, batch, seq, "float32")[0] == pytest.approx(4 * memory / 2 ** 20, rel=1e-12)


def test_cost_refusal_names_the_exact_largest_batch():
    arch = get_space("l").largest()
    with pytest.raises(ValueError) as e:
        cost.flops([arch], "l", 10 ** 9, 1024)
    allowed = int(str(e.value).rsplit("batch <= ", 1)[1].split()[0])
    assert _truth(arch, allowed, 1024)[0] <= INT64_MAX < _truth(arch, allowed + 1, 1024)[0]
    assert int(cost.flops([arch], "l", allowed, 1024)[0]) == _truth(arch, allowed, 1024)[0] > 0


@pytest.mark.parametrize("field,kwargs", [("batch", {"batch": 0}), ("batch", {"batch": 2.0}),
                                          ("batch", {"batch": True}), ("seq", {"seq": 1025}),
                                          ("seq", {"seq": "256"}), ("dtype", {"dtype": 4})])
def test_cost_arguments(field, kwargs):
    args = {"batch": 1, "seq": 256, "dtype": "float32", **kwargs}
    with pytest.raises((TypeError, ValueError), match=f"{field}: .*(expected|allowed)"):
        cost.memory_mb([get_space("s").smallest()], "s", **args)


# ---- Benchmark ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["noise", "interval"])
@pytest.mark.parametrize("value", ["False", "True", 0, 1, None, np.float64(1.0)])
def test_boolean_options_are_strict(field, value):
    b, arch = Benchmark("s"), get_space("s").smallest()
    with pytest.raises(TypeError, match=re.escape(f"{field}: expected True or False, got {value!r}")):
        b.query(arch, metrics="params", **{field: value})


@pytest.mark.parametrize("field", ["metrics", "devices"])
@pytest.mark.parametrize("value", [3, {"latency_ms": 1}, {"params"}, [3], ["params", None], [], b"params"])
def test_metrics_and_devices_are_a_str_or_a_list_of_str(field, value):
    with pytest.raises((TypeError, ValueError), match=f"{field}: expected (a str or a list of str|at least one)"):
        Benchmark("s").select(**{field: value})


def test_a_str_and_a_one_element_list_mean_the_same():
    b = Benchmark("s")
    assert b.select("params") == b.select(["params"]) == b.select(("params",)) == ["params"]
    assert np.array_equal(b.evaluate([get_space("s").smallest()], "params"),
                          b.evaluate([get_space("s").smallest()], ["params"]))


# ---- HW-GPT-Bench facade -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,field", [({"noise": "False"}, "noise"), ({"noise": 1}, "noise"),
                                          ({"use_supernet_surrogate": "no"}, "use_supernet_surrogate"),
                                          ({"seed": -2}, "seed"), ({"search_space": 3}, "space"),
                                          ({"search_space": "xl"}, "space")])
def test_facade_constructor_arguments(kwargs, field):
    with pytest.raises((TypeError, ValueError), match=f"{field}: .*(expected|allowed)"):
        HWGPT(**kwargs)


BAD_CONFIGS = [{"sample_embed_dim": 100}, "gpt-s-nonsense", 42, None,
               {"sample_embed_dim": 192, "sample_n_layer": 10, "sample_mlp_ratio": [2] * 10,
                "sample_n_head": [4] * 9, "sample_bias": "False"}]


@pytest.mark.parametrize("config", BAD_CONFIGS)
def test_failed_set_arch_leaves_the_facade_as_it_was(config):
    api = HWGPT("s", seed=0)
    api.set_arch(api.sample_arch())
    before = (dict(api.config), api._arch, api.query(metric="params"))
    with pytest.raises((TypeError, ValueError)):
        api.set_arch(config)
    assert (api.config, api._arch, api.query(metric="params")) == before


def test_set_arch_accepts_an_arch_or_id_and_keeps_a_dict_config():
    api, arch = HWGPT("s"), get_space("s").largest()
    api.set_arch(arch)
    assert api.config == arch.to_hwg_dict() and api.get_params() == int(cost.params([arch], "s")[0])
    api.set_arch(arch.id)
    assert api.config == arch.to_hwg_dict()


@pytest.mark.parametrize("kwargs,field", [({"metric": 3}, "metric"), ({"metric": "latency"}, "metric"),
                                          ({"device": ["h100"]}, "device"), ({"device": "h1000"}, "device")])
def test_facade_query_arguments(kwargs, field):
    api = HWGPT("s", seed=0)
    api.sample_arch()
    with pytest.raises((TypeError, ValueError), match=f"{field}: .*(expected|allowed|available)"):
        api.query(**kwargs)


# ---- moo objectives --------------------------------------------------------------------------------------
@pytest.mark.parametrize("objectives,allowed", [
    ("--params,flops", r"more than one '-'; allowed"), ("-params,,flops", "empty name"),
    ("flops,flops", "each column may appear once"), ("params,-params", "each column may appear once"),
    ("flops", ">= 2 objectives"), ([], ">= 2 objectives|at least one"), (["flops", 3], "list of str"),
    (42, "a str or a list of str"), ("flops,latency ms", "not a column name"),
])
def test_bad_objectives_are_refused_not_reinterpreted(objectives, allowed):
    with pytest.raises((TypeError, ValueError), match=f"objectives: .*({allowed})"):
        parse_objectives(objectives)


def test_problem_noise_is_strict():
    with pytest.raises(TypeError, match="noise: expected True or False"):
        Problem("s", "-params,flops", noise="False")


def test_maximising_params_is_one_minus():
    P = Problem("s", "-params,flops")
    X = get_space("s").encode([get_space("s").largest()])
    assert P.raw(X)[0, 0] == -int(cost.params(X, "s")[0])


# ---- tables and merge arguments --------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,field", [({"path": 3}, "path"), ({"path": None}, "path"),
                                          ({"path": "data/s/cpu_xeon_2c.h5", "raw": "no"}, "raw")])
def test_load_dataframe_arguments(kwargs, field):
    with pytest.raises(TypeError, match=f"{field}: expected"):
        load_dataframe(**kwargs)


@pytest.mark.parametrize("kwargs,field", [({"results_dir": 3}, "results_dir"), ({"data_dir": None}, "data_dir"),
                                          ({"refit": "False"}, "refit"), ({"fronts": 0}, "fronts"),
                                          ({"allow_rehearsal": "yes"}, "allow_rehearsal"),
                                          ({"log": "print"}, "log")])
def test_merge_results_arguments(kwargs, field, tmp_path):
    from hwgptbench.gpu_plan.merge import merge_results

    args = {"results_dir": tmp_path, "data_dir": tmp_path / "data", **kwargs}
    with pytest.raises(TypeError, match=f"{field}: expected"):
        merge_results(**args)
    assert not (tmp_path / "data").exists()                  # refused before anything was written


def test_merge_results_refuses_a_file_as_data_dir(tmp_path):
    from hwgptbench.gpu_plan.merge import merge_results

    f = tmp_path / "data"
    f.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="data_dir: .* is a file"):
        merge_results(tmp_path, f)
    assert f.read_text() == "not a folder"


# ---- the validation helpers themselves ----------------------------------------------------------------------
@given(st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.lists(st.booleans())))
def test_check_bool_accepts_only_bools(v):
    with pytest.raises(TypeError, match="flag: expected True or False"):
        check_bool(v, "flag")


@given(st.lists(st.text(), min_size=1) | st.text())
def test_check_str_list_keeps_str_lists(v):
    assert check_str_list(v, "names") == ([v] if isinstance(v, str) else list(v))


# ---- counts: ints (numpy ints too), never floats, bools or strings -----------------------------------
def _count_calls():
    import dataclasses

    from hwgptbench.training.evaluate import eval_windows
    from hwgptbench.profiling.profiling_set import profiling_set
    from hwgptbench.profiling.protocol import default_protocol
    from hwgptbench.training.sandwich import TrainConfig
    p2 = default_protocol("cpu", version=2)
    tokens = np.zeros(5000, dtype=np.uint16)
    return {"n": lambda v: profiling_set("s", v),
            "warmup": lambda v: dataclasses.replace(p2, warmup=v).check(),
            "rounds": lambda v: dataclasses.replace(p2, rounds=v).check(),
            "steps": lambda v: TrainConfig(steps=v).check(),
            "budget_tokens": lambda v: eval_windows(tokens, budget_tokens=v, seq=256)}


@pytest.mark.parametrize("field", ["n", "warmup", "rounds", "steps", "budget_tokens"])
@pytest.mark.parametrize("value", [512.0, True, "512", None])
def test_counts_refuse_what_is_not_an_int(field, value):
    with pytest.raises(TypeError, match=f"^{field}: expected an int, got {re.escape(repr(value))}"):
        _count_calls()[field](value)


def test_configs_take_numpy_ints_and_keep_python_ints():
    """A numpy int is an int, and it must survive the JSON the config is written into (the
    provenance of a table, a training state) rather than fail there after the work was done."""
    import dataclasses
    import json

    from hwgptbench.profiling.protocol import default_protocol
    from hwgptbench.training.sandwich import TrainConfig
    p = dataclasses.replace(default_protocol("cpu", version=2), warmup=np.int64(2), batch=np.int32(1))
    p.check()
    c = TrainConfig(steps=np.int64(10), warmup=np.int16(1), batch=np.int64(2))
    c.check()
    for config in (p, c):
        d = json.loads(json.dumps(dataclasses.asdict(config)))
        assert all(type(v) is int for k, v in dataclasses.asdict(config).items()
                   if k in ("warmup", "batch", "steps")), d
    assert (p.warmup, p.batch, c.steps, c.warmup) == (2, 1, 10, 1)
