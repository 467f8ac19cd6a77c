"""Weight-sharing supernet, sandwich training and perplexity evaluation on a tiny CPU setup."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tiktoken")

from hwgptbench.training.corpus import EOT, Source, build_corpus, load_split  # noqa: E402
from hwgptbench.training.evaluate import (eval_windows, evaluate_arch, evaluate_profiling_set, noise_report,  # noqa: E402
                                 perplexity_table, read_results)
from hwgptbench.model import GPT  # noqa: E402
from hwgptbench.space import get_space  # noqa: E402
from hwgptbench.training.supernet import (TrainConfig, fits, load_supernet, sample_sub_networks, step_archs,  # noqa: E402
                                 train)
from hwgptbench.tables import read_table, write_table  # noqa: E402

SP = get_space("s")
# A small supernet inside space s: E=192 (the smallest embedding), 10 layers, largest ratios/heads.
TINY = SP.arch(192, 10, [4] * 10, [12] * 10, True)
SUB = SP.arch(192, 10, [2, 3, 4, 2, 3, 4, 2, 3, 4, 2], [4, 8, 12, 4, 8, 12, 4, 8, 12, 4], False)


def _tiny(seed=0):
    torch.manual_seed(seed)
    m = GPT(TINY, device="cpu", dtype=torch.float32, init=False)
    m.init_weights(generator=torch.Generator().manual_seed(seed))
    return m.eval()


def _standalone_from_slices(big, sub):
    """An independent standalone GPT(sub) whose weights are copied, by hand, from the leading slices."""
    m = GPT(sub, device="cpu", dtype=torch.float32, init=False)
    E = sub.embed_dim
    with torch.no_grad():
        m.wte.copy_(big.wte[:, :E])
        m.ln_f.weight.copy_(big.ln_f.weight[:E])
        m.ln_f.bias.copy_(big.ln_f.bias[:E])
        for bs, bb, r, h in zip(m.blocks, big.blocks, sub.mlp_ratio, sub.n_head):
            H = bb.attn.max_head
            for ln_s, ln_b in ((bs.ln1, bb.ln1), (bs.ln2, bb.ln2)):
                ln_s.weight.copy_(ln_b.weight[:E])
                ln_s.bias.copy_(ln_b.bias[:E])
            rows = torch.cat([torch.arange(j * 64 * H, j * 64 * H + 64 * h) for j in range(3)])
            bs.attn.qkv.weight.copy_(bb.attn.qkv.weight[rows][:, :E])
            bs.attn.proj.weight.copy_(bb.attn.proj.weight[:E, :64 * h])
            bs.mlp.fc.weight.copy_(bb.mlp.fc.weight[:r * E, :E])
            bs.mlp.proj.weight.copy_(bb.mlp.proj.weight[:E, :r * E])
    return m.eval()


def test_slices_share_storage_with_the_supernet():
    m = _tiny()
    m.set_sub_network(SUB)
    x = torch.randint(0, 50257, (2, 16))
    with torch.no_grad():
        before = m(x).clone()
        w = m.blocks[0].mlp.fc.weight
        w[2 * 192 - 1, 0] += 1.0            # inside layer 0's active slice (r=2 -> 384 rows)
        inside = m(x).clone()
        w[2 * 192, 0] += 1.0                # just past it: the sub-network does not use this row
        outside = m(x).clone()
        m.blocks[0].attn.qkv.weight[64 * 12 + 3, 5] += 1.0   # head 0 of k (past q's 12 heads)
        k_changed = m(x).clone()
    assert not torch.equal(before, inside)
    assert torch.equal(inside, outside)
    assert not torch.equal(outside, k_changed)
    assert m.blocks[0].mlp.fc.weight[:384, :192].data_ptr() == w.data_ptr()


def test_sub_network_equals_standalone_model_with_copied_slices():
    m = _tiny(1)
    m.set_sub_network(SUB)
    alone = _standalone_from_slices(m, SUB)
    x = torch.randint(0, 50257, (2, 24))
    with torch.no_grad():
        torch.testing.assert_close(m(x), alone(x), rtol=1e-5, atol=1e-5)


def test_max_sub_network_equals_the_full_model():
    m = _tiny(2)
    x = torch.randint(0, 50257, (2, 16))
    with torch.no_grad():
        full = m(x).clone()
        m.set_sub_network(SUB)
        assert not torch.equal(m(x), full)
        m.set_sub_network(TINY)
        assert torch.equal(m(x), full)


def test_lr_schedule_hand_values():
    c = TrainConfig(steps=110, warmup=10, lr=1e-3, min_lr=1e-4)
    assert c.lr_at(0) == pytest.approx(1e-4)
    assert c.lr_at(9) == pytest.approx(1e-3)
    assert c.lr_at(10) == pytest.approx(1e-3)
    assert c.lr_at(60) == pytest.approx(0.5 * (1e-3 + 1e-4))
    assert c.lr_at(110) == pytest.approx(1e-4)
    assert c.snapshot_steps() == {25: 28, 50: 55, 75: 82, 100: 110}
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(steps=10, warmup=10).check()
    with pytest.raises(ValueError):
        TrainConfig(supernet="gpt-s-9-192").check()


def test_sandwich_and_sampling_stay_inside_the_supernet():
    c = TrainConfig(supernet=TINY.id, sandwich=5, steps=10, warmup=1)
    a = step_archs(c, 3)
    assert a[0] == TINY and a[1] == SP.smallest() and len(a) == 5
    assert a == step_archs(c, 3) and a != step_archs(c, 4)
    subs = sample_sub_networks(SP, TINY, 200, seed=0)
    assert all(fits(s, TINY) for s in subs)
    assert {s.embed_dim for s in subs} == {192} and {s.bias for s in subs} == {True, False}
    assert sample_sub_networks(SP, SP.largest(), 5, 1) == SP.sample(5, seed=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny corpus of repetitive English documents (fast to learn)."""
    d = tmp_path_factory.mktemp("texts")
    words = "the cat sat on the mat and the dog ran to the park while the bird sang".split()
    rng = np.random.default_rng(0)
    for i in range(120):
        n = int(rng.integers(60, 200))
        text = " ".join(words[(k * 3 + i) % len(words)] for k in range(n))
        (d / f"doc{i:03d}.txt").write_text(f"Story {i}.\n\n{text}.\n")
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, [Source.local(d)], seed=0, val_frac=0.2, test_frac=0.2, log=lambda *a: None)
    return out


def _cfg(**kw):
    base = dict(space="s", supernet=TINY.id, steps=8, batch=2, seq=16, sandwich=2, lr=5e-3, min_lr=5e-4,
                warmup=2, eval_every=4, eval_batches=1, snapshots=(0.5, 1.0))
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("run")
    out = tmp_path_factory.mktemp("out")
    state = train(corpus, run, _cfg(), device="cpu", out_dir=out, log=lambda *a: None)
    return run, out, state


def test_tiny_supernet_loss_falls(trained):
    run, out, state = trained
    rows = read_results(run / "train_log.jsonl")
    val = [r for r in rows if "val_loss_max" in r]
    assert state["step"] == 8 and state["tokens_seen"] == 8 * 2 * 16
    assert val[0]["step"] == 0 and val[-1]["step"] == 8
    assert val[-1]["val_loss_max"] < val[0]["val_loss_max"] - 1.0
    assert val[-1]["val_loss_min"] < val[0]["val_loss_min"] - 1.0
    assert math.log(50257) - 0.5 < val[0]["val_loss_max"] < math.log(50257) + 1.0   # untrained ~ uniform
    assert set(state["snapshots"]) == {"50", "100"} and state["snapshots"]["50"]["step"] == 4
    assert (out / "train_log.jsonl").exists() and (out / "state.json").exists()


def test_resume_continues_the_same_run(corpus, trained, tmp_path):
    run_a, _, _ = trained
    run_b = tmp_path / "b"
    train(corpus, run_b, _cfg(), device="cpu", max_steps=3, log=lambda *a: None)
    assert json.loads((run_b / "state.json").read_text())["step"] == 3
    state = train(corpus, run_b, _cfg(), device="cpu", log=lambda *a: None)
    assert state["step"] == 8
    a = torch.load(run_a / "snapshot_f100.pt", weights_only=True)["model"]
    b = torch.load(run_b / "snapshot_f100.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="another config"):
        train(corpus, run_b, _cfg(lr=1e-2), device="cpu", log=lambda *a: None)


def test_a_run_folder_has_one_trainer_at_a_time(corpus, tmp_path):
    """Another writer holds the run folder (its lock, as a second process would): training is
    refused and nothing in the folder changes."""
    from hwgptbench.files import LockedError, WriterLock
    run = tmp_path / "r"
    train(corpus, run, _cfg(), device="cpu", max_steps=2, log=lambda *a: None)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with WriterLock(run / "state.json"):
        with pytest.raises(LockedError, match="another process"):
            train(corpus, run, _cfg(), device="cpu", log=lambda *a: None)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert train(corpus, run, _cfg(), device="cpu", log=lambda *a: None)["step"] == 8     # free again


def test_evaluation_is_deterministic_and_pooled(corpus, trained):
    run, _, _ = trained
    model, _ = load_supernet(run, 100, "cpu")
    x, y = eval_windows(load_split(corpus, "test"), budget_tokens=48, seq=16)
    assert x.shape == (3, 16) and np.array_equal(x[:, 1:], y[:, :-1])
    test = np.asarray(load_split(corpus, "test"), dtype=np.int64)
    assert np.array_equal(x[0], test[:16]) and np.array_equal(y[-1], test[-16:])   # spread over the split
    r1 = evaluate_arch(model, SUB, x, y, batch=2)
    r2 = evaluate_arch(model, SUB, x, y, batch=3)
    assert r1["nll"] == pytest.approx(r2["nll"], rel=1e-12) and r1["accuracy"] == r2["accuracy"]
    assert r1["perplexity"] == pytest.approx(math.exp(np.mean(r1["window_nll"])), rel=1e-5)
    assert r1["tokens"] == 48 and 0 <= r1["accuracy"] <= 1
    big = evaluate_arch(model, TINY, x, y)
    assert big["nll"] != r1["nll"]
    with pytest.raises(ValueError, match="budget_tokens"):
        eval_windows(load_split(corpus, "test"), budget_tokens=10 ** 9, seq=16)


def test_profiling_set_evaluation_and_table(corpus, trained, tmp_path):
    run, _, _ = trained
    from hwgptbench.profiling.profiling_set import profiling_set
    # the tiny supernet holds only E=192 archs: evaluate those of the first profiling-set entries
    idx = [i for i, a in enumerate(profiling_set("s", 40)) if fits(a, TINY)][:3]
    assert idx
    res = {}
    for pct in (50, 100):
        for i in idx:
            evaluate_profiling_set(corpus, run, pct, n=i + 1, start=i, budget_tokens=32, device="cpu",
                                   results_dir=tmp_path, log=lambda *a: None)
        res[pct] = read_results(tmp_path / f"eval_s_f{pct}.jsonl")
    res[50] = res[50][:2]        # one arch not evaluated at 50%: NaN there
    again = evaluate_profiling_set(corpus, run, 100, n=idx[-1] + 1, start=idx[0], budget_tokens=32,
                                   device="cpu", results_dir=tmp_path, log=lambda *a: None)
    assert len(read_results(again)) == len(idx)          # resumable: nothing evaluated twice
    with pytest.raises(ValueError, match="other evaluation windows"):
        evaluate_profiling_set(corpus, run, 100, n=idx[-1] + 1, start=idx[0], budget_tokens=48,
                               device="cpu", results_dir=tmp_path, log=lambda *a: None)
    t = perplexity_table("s", res, {"note": "test"})
    write_table(t, tmp_path / "perplexity.h5")
    back = read_table(tmp_path / "perplexity.h5")
    assert back.kind == "perplexity" and back.source == "perplexity" and len(back) == len(idx)
    assert back.units["perplexity_f100"] == "1" and back.sources["accuracy_f50"] == "measured"
    assert np.isnan(back.raw["perplexity_f50"][-1, 0]) and np.isfinite(back.raw["perplexity_f100"]).all()
    assert back.provenance["fidelities"]["50"]["step"] == 4
    rep = noise_report(res[100], "s")
    assert rep[192]["n_archs"] == len(idx) and rep[192]["windows"] == 2


def test_noise_report_hand_values():
    a, b = SP.smallest(), SP.arch(192, 10, [3] * 10, [4] * 10, False)
    c = SP.largest()
    rows = [{"arch_id": a.id, "nll": 2.5, "window_nll": [1.0, 2.0, 3.0, 4.0]},
            {"arch_id": b.id, "nll": 3.5, "window_nll": [2.0, 3.0, 4.0, 5.0]},
            {"arch_id": c.id, "nll": 1.0, "window_nll": [1.0, 1.0, 1.0, 1.0]}]
    rep = noise_report(rows, "s")
    assert set(rep) == {192, 768} and rep[192]["n_archs"] == 2 and rep[192]["windows"] == 4
    assert rep[192]["spread_std_nll"] == pytest.approx(math.sqrt(0.5))            # std(2.5, 3.5)
    assert rep[192]["median_se_nll"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert rep[192]["median_se_paired_diff"] == pytest.approx(0.0)                # a - b = -1 everywhere
    assert rep[192]["median_abs_paired_diff"] == pytest.approx(1.0)
    assert math.isnan(rep[768]["spread_std_nll"])


def test_perplexity_table_cli(corpus, trained, tmp_path):
    import shutil

    from hwgptbench.cli import main
    run, _, _ = trained
    for f in ("state.json", "train_log.jsonl"):
        shutil.copy2(run / f, tmp_path / f)
    idx = [i for i, a in enumerate(__import__("hwgptbench.profiling.profiling_set", fromlist=["x"])
                                   .profiling_set("s", 8)) if fits(a, TINY)][:2]
    for i in idx:
        evaluate_profiling_set(corpus, run, 100, n=i + 1, start=i, budget_tokens=32, device="cpu",
                               results_dir=tmp_path, log=lambda *a: None)
    out = tmp_path / "s" / "perplexity.h5"
    assert main(["perplexity-table", "--space", "s", "--results", str(tmp_path), "--table", str(out),
                 "--corpus-manifest", str(corpus / "manifest.json")]) == 0
    t = read_table(out)
    assert sorted(t.raw) == ["accuracy_f100", "perplexity_f100"] and len(t) == len(idx)
    prov = t.provenance
    assert prov["training"]["tokens_seen"] == 8 * 2 * 16 and prov["corpus_manifest"]["sha256"]
    assert [r["step"] for r in prov["train_curve"] if "val_loss_max" in r] == [0, 4, 8]
    assert main(["perplexity-table", "--space", "s", "--results", str(tmp_path / "none"), "--table",
                 str(out)]) == 2
