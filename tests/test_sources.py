"""Sources of numbers: the contract, and HW-GPT-Bench's predictors served exactly as its own code
computes them (a torch re-implementation of its published MLP and input encodings is the truth)."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwgptbench import Benchmark, get_space
from hwgptbench.compat import HWGPT
from hwgptbench.sources import IntervalUnavailable, check_source, default_sources
from hwgptbench.sources.hwgpt import ASSETS, COLUMNS, HWGPTPredictors

RELEASE = Path(__file__).resolve().parents[2] / "shared" / "hwg_release"
# HW-GPT-Bench's lib/utils.py search_spaces (bias choices are the strings "True", "False")
HWG_SPACES = {
    "s": dict(embed_dim_choices=[192, 384, 768], n_layer_choices=[10, 11, 12], mlp_ratio_choices=[2, 3, 4],
              n_head_choices=[4, 8, 12], bias_choices=["True", "False"]),
    "m": dict(embed_dim_choices=[256, 512, 1024], n_layer_choices=[22, 23, 24], mlp_ratio_choices=[2, 3, 4],
              n_head_choices=[8, 12, 16], bias_choices=["True", "False"]),
    "l": dict(embed_dim_choices=[320, 640, 1280], n_layer_choices=[34, 35, 36], mlp_ratio_choices=[2, 3, 4],
              n_head_choices=[8, 16, 20], bias_choices=["True", "False"]),
}


# ---- HW-GPT-Bench's definitions, re-implemented from its source (hwgpt/predictors/*/net.py, lib/utils.py)
def hwg_net(n_in, state):
    """Its Net: fc1..fc4 with ReLU, fc5 linear, 128 wide (hw_embed_on=False for memory)."""
    import torch
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(n_in, 128), nn.Linear(128, 128)
            self.fc3, self.fc4, self.fc5 = nn.Linear(128, 128), nn.Linear(128, 128), nn.Linear(128, 1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            out = self.relu(self.fc1(x))
            out = self.relu(self.fc2(out))
            out = self.relu(self.fc3(out))
            out = self.relu(self.fc4(out))
            return self.fc5(out)
    net = Net()
    net.load_state_dict(state)
    return net.eval()


def hwg_one_hot(config, space):
    import torch
    c = HWG_SPACES[space]
    max_layers = max(c["n_layer_choices"])
    embed, layer = torch.zeros(3), torch.zeros(3)
    mlp, head, bias = torch.zeros(max_layers, 3), torch.zeros(max_layers, 3), torch.zeros(2)
    embed[c["embed_dim_choices"].index(config["sample_embed_dim"])] = 1
    layer[c["n_layer_choices"].index(config["sample_n_layer"])] = 1
    for i in range(config["sample_n_layer"]):
        mlp[i][c["mlp_ratio_choices"].index(config["sample_mlp_ratio"][i])] = 1
        head[i][c["n_head_choices"].index(config["sample_n_head"][i])] = 1
    bias[c["bias_choices"].index(config["sample_bias"])] = 1
    return torch.cat([embed, layer, mlp.view(-1), head.view(-1), bias])


def hwg_memory_features(config, space):
    c = HWG_SPACES[space]
    n, lm = config["sample_n_layer"], max(c["n_layer_choices"])
    fm = [config["sample_embed_dim"], n] + list(config["sample_mlp_ratio"][:n]) + [-1] * (lm - n) \
        + list(config["sample_n_head"][:n]) + [-1] * (lm - n) + [1 if config["sample_bias"] == "True" else 0]

    def norm(x, key):
        return (x - min(c[key])) / (max(c[key]) - min(c[key]))
    fm[0], fm[1] = norm(fm[0], "embed_dim_choices"), norm(fm[1], "n_layer_choices")
    for i in range(2, 2 + lm):
        if fm[i] != -1:
            fm[i] = norm(fm[i], "mlp_ratio_choices")
    for i in range(2 + lm, 2 + 2 * lm):
        if fm[i] != -1:
            fm[i] = norm(fm[i], "n_head_choices")
    return fm


def reference(space, configs, stem, state):
    """What HW-GPT-Bench's api computes for each config (compute_predictions_ppl / get_memory)."""
    import torch
    if stem == "perplexity":
        x = torch.stack([hwg_one_hot(c, space) for c in configs])
    else:
        x = torch.tensor([hwg_memory_features(c, space) for c in configs])
    with torch.no_grad():
        return hwg_net(x.shape[1], state)(x)[:, 0].double().numpy()


def shipped_state(stem, space):
    import torch
    with np.load(ASSETS / f"{stem}_{space}.npz", allow_pickle=False) as z:
        return {k: torch.from_numpy(z[k].copy()) for k in z.files}


# ---- tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["s", "m", "l"])
def test_served_values_equal_hwgpt_bench_code_on_10k_architectures(space):
    pytest.importorskip("torch")
    sp = get_space(space)
    archs = sp.sample(10_000, seed=7) + [sp.smallest(), sp.largest()]
    configs = [a.to_hwg_dict(pad=True) for a in archs]          # HWG's padded lists, bias as "True"/"False"
    got = Benchmark(space).query(archs, metrics=list(COLUMNS))
    for col, (stem, _, _) in COLUMNS.items():
        want = reference(space, configs, stem, shipped_state(stem, space))
        np.testing.assert_allclose(got[col].to_numpy(), want, rtol=2e-5, err_msg=col)


@pytest.mark.skipif(not RELEASE.exists(), reason="HW-GPT-Bench's release files (../shared/hwg_release) are not here")
def test_converted_weights_equal_the_released_state_dicts():
    import torch
    manifest = json.loads((ASSETS / "manifest.json").read_text())["files"]
    for name, entry in manifest.items():
        origin = RELEASE / entry["origin"]
        assert hashlib.sha256(origin.read_bytes()).hexdigest() == entry["origin_sha256"]
        state = torch.load(origin, map_location="cpu", weights_only=True)
        shipped = shipped_state(*name[:-len(".npz")].rsplit("_", 1))
        assert set(state) == set(shipped)
        for k in state:
            assert torch.equal(state[k], shipped[k]), (name, k)


def test_contract_of_every_default_source():
    for src in default_sources():
        check_source(src)


def test_damaged_or_substituted_weights_are_refused(tmp_path):
    assets = tmp_path / "hwgpt"
    shutil.copytree(ASSETS, assets)
    f = assets / "perplexity_s.npz"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    bench = Benchmark("s", sources=(HWGPTPredictors(assets),))
    arch = get_space("s").sample(1, seed=0)
    with pytest.raises(ValueError, match=r"perplexity_s\.npz: sha256 differs"):
        bench.query(arch, metrics=["perplexity_hwgpt"])
    # the memory predictors are other files: still served
    assert bench.query(arch, metrics=["memory_MB_hwgpt_float16"]).shape == (1, 1)
    (assets / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest"):
        Benchmark("s", sources=(HWGPTPredictors(assets),)).query(arch, metrics=["memory_MB_hwgpt_float16"])


def test_columns_say_their_source_and_nothing_falls_back():
    bench = Benchmark("m")
    meta = bench.metrics()
    for col in COLUMNS:
        assert meta[col]["kind"] == "third-party predictor"
        assert "HW-GPT-Bench" in meta[col]["source"] and meta[col]["licence"].startswith("Apache-2.0")
    for col, m in meta.items():
        assert m["kind"] and m["source"] and m["licence"], col
    arch = get_space("m").sample(2, seed=1)
    with pytest.raises(ValueError, match="perplexity_hwgpt"):     # ours is not measured: said, not replaced
        bench.query(arch, metrics=["perplexity"])
    with pytest.raises(IntervalUnavailable, match="point value only"):
        bench.query(arch, metrics=["perplexity_hwgpt"], interval=True)
    assert "perplexity_hwgpt" not in Benchmark("m", sources=()).columns()


def test_facade_perplexity_and_memory_are_hwgpt_benchs():
    pytest.importorskip("torch")
    api = HWGPT("l")
    for seed in range(3):
        cfg = api.sample_arch()
        for metric, stem in (("perplexity", "perplexity"), ("float16_memory", "float16_memory"),
                             ("bfloat16_memory", "bfloat16_memory")):
            got = api.query(metric=metric, predictor="mlp")[metric]
            want = reference("l", [cfg], stem, shipped_state(stem, "l"))[0]
            assert got == pytest.approx(want, rel=2e-5)
    with pytest.raises(ValueError, match="'supernet' perplexity.*no perplexity table"):
        api.query(metric="perplexity", predictor="supernet")
    with pytest.raises(ValueError, match="predictor: unknown 'gp'"):
        api.query(metric="perplexity", predictor="gp")


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_a_bad_predictor_value_is_refused_not_served(monkeypatch, bad):
    """A NaN, negative or infinite value from HW-GPT-Bench's nets is an error naming the column and
    the architecture, never clipped (a real fault, injected into the nets' output)."""
    from hwgptbench import Benchmark
    from hwgptbench.sources import hwgpt

    original = hwgpt.mlp

    def broken(layers, h):
        out = original(layers, h)
        out[-1, 0] = bad
        return out
    monkeypatch.setattr(hwgpt, "mlp", broken)
    b = Benchmark("s")
    X = b.space.sample_features(5, seed=0)
    with pytest.raises(RuntimeError, match=r"perplexity_hwgpt: HW-GPT-Bench's predictor returned .* for gpt-s-"):
        b.evaluate(X, ["perplexity_hwgpt", "memory_MB_hwgpt_float16"])
