"""The whole xs pipeline as a rehearsal (tiny corpus, tiny counts; the real runs are the commands in
benchmarks.md): train, standalone networks, scoring at four fidelities, the perplexity table,
surrogates, a query, MO-ASHA on the real fidelity axis and the validity report."""
import json
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tiktoken")
pytest.importorskip("xgboost")

from hwgptbench.cli import main  # noqa: E402
from hwgptbench.space import as_arch  # noqa: E402
from hwgptbench.tables import read_table  # noqa: E402


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    work, data = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("data")
    for stage in ("train", "standalone", "score", "table"):
        assert main(["xs-pipeline", stage, "--work", str(work), "--rehearsal", "--data-dir", str(data)]) == 0
    for stage in ("train", "score"):                          # a second supernet, scored at its final fidelity
        assert main(["xs-pipeline", stage, "--work", str(work), "--rehearsal", "--seed", "1", "--fidelities", "100"]
                    if stage == "score" else ["xs-pipeline", stage, "--work", str(work), "--rehearsal", "--seed", "1"]) == 0
    assert main(["xs-pipeline", "validity", "--work", str(work), "--rehearsal"]) == 0
    return work, data


def test_rehearsal_writes_a_marked_table_with_four_fidelities(rehearsal):
    work, data = rehearsal
    t = read_table(data / "xs" / "perplexity.h5")
    assert t.space == "xs" and t.provenance["rehearsal"] is True
    assert sorted(t.raw) == sorted(f"{m}_f{p}" for m in ("perplexity", "accuracy") for p in (25, 50, 75, 100))
    ppl = {p: t.raw[f"perplexity_f{p}"][:, 0] for p in (25, 50, 75, 100)}
    assert np.isfinite(ppl[100]).all() and len(t) == 40
    assert np.isfinite(ppl[25]).sum() == 34                # 34 scored at the lower fidelities, NaN elsewhere
    assert np.nanmean(ppl[100]) < np.nanmean(ppl[25])       # training helped, even this little
    assert t.provenance["training"]["config"]["space"] == "xs" and t.provenance["training"]["config"]["bf16"]
    assert set(t.provenance["noise"]["100"]) <= {"64", "128", "256"}
    build, = t.provenance["runs"]                            # the build: what made it, when, with what
    assert build["command"] == f"hwgptbench xs-pipeline table --work {work} --rehearsal --data-dir {data}"
    assert build["git_commit"] and build["versions"]["torch"] and build["started"][:2] == "20"


def test_rehearsal_validity_report_compares_with_standalone_networks(rehearsal):
    work, _ = rehearsal
    rep = json.loads((work / "validity.json").read_text())
    assert set(rep["standalone"]) == {"25", "50", "75", "100"}
    assert rep["standalone"]["100"]["n"] == 3 and len(rep["standalone_ppl"]) == 3
    assert set(rep["standalone_supernet_ppl"]) == set(rep["standalone_ppl"])
    widths = [as_arch(a, "xs").embed_dim for a in rep["standalone_ppl"]]
    assert rep["standalone_within_width"]["100"]["pairs"] == sum(
        widths[i] == widths[j] for i in range(3) for j in range(i + 1, 3))
    second = rep["second_seed"]                             # 34 architectures scored by both runs at 100%
    assert second["run"] == "supernet_seed1" and second["100"]["n"] == 34
    assert second["final_split_half"]["n"] == 34 and set(second["final_vs_first_at"]) == {"25", "50", "75", "100"}
    assert sum(v["n"] for v in second["final_split_half_by_embed_dim"].values()) == 34
    for d in (work / "standalone").iterdir():             # each standalone run trained and scored itself only
        rows = [json.loads(ln) for ln in (d / "eval_xs_f100.jsonl").read_text().splitlines()]
        assert [r["arch_id"] for r in rows] == [d.name]


def test_rehearsal_refuses_the_package_data(rehearsal, capsys):
    from hwgptbench.paths import data_dir
    work, _ = rehearsal
    assert main(["xs-pipeline", "table", "--work", str(work), "--rehearsal", "--data-dir", str(data_dir())]) == 2
    assert "package's data" in capsys.readouterr().err


@pytest.fixture(scope="module")
def fitted(rehearsal, tmp_path_factory):
    """The rehearsal's surrogates, fitted into a scratch folder, and a Benchmark on them."""
    from hwgptbench import Benchmark
    _, data = rehearsal
    sur = tmp_path_factory.mktemp("sur")
    assert main(["fit-surrogates", "--data", str(data), "--out", str(sur), "--spaces", "xs"]) == 0
    assert all(e.get("rehearsal") for e in json.loads((sur / "manifest.json").read_text())["surrogates"].values())
    return Benchmark("xs", surrogates=sur)


def _problem(bench):
    from hwgptbench.moo.problem import Problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # no shipped bounds for this scratch problem
        return Problem("xs", ["perplexity", "params"], benchmark=bench)


def test_rehearsal_serves_fidelities_and_moasha_uses_them(rehearsal, fitted, monkeypatch):
    from hwgptbench.moo.runner import run
    monkeypatch.setenv("HWGPTBENCH_DATA", str(rehearsal[1]))
    arch = fitted.sample(1, seed=0)[0]
    cols = [f"perplexity_f{p}" for p in (25, 50, 75, 100)]
    r = fitted.query(arch, metrics=cols + ["params"])
    assert all(np.isfinite(r[c]) and r[c] > 0 for c in cols)
    P = _problem(fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        df = run(P, "moasha", budget=20, seed=0)
    assert P.fidelities == (25, 50, 75, 100)
    assert len(df) == 20 and set(df["fidelity"]) >= {25, 50}
    assert np.all(np.diff(df["cost_s"]) > 0)                # simulated seconds: every row trains or scores


def test_simulated_cost_charges_what_training_really_cost(rehearsal, fitted, monkeypatch):
    """The truth is each standalone network's own clock (its state.json): the charges come from a
    least-squares line through the clocks, so (all trained the same tokens, the line's intercept
    free) the networks are charged in total exactly the seconds they took in total."""
    from hwgptbench.moo.sim_cost import SimulatedCost
    from hwgptbench.space import Arch
    work, data = rehearsal
    monkeypatch.setenv("HWGPTBENCH_DATA", str(data))
    c = SimulatedCost(_problem(fitted))
    assert "networks trained alone" in c.sources["train"]["from"]
    assert c.train_tokens == 8 * 2 * 32 and c.eval_tokens == 64      # XS_REHEARSAL: steps x batch x seq
    states = [json.loads((d / "state.json").read_text()) for d in sorted((work / "standalone").iterdir())]
    X = c.problem.space.encode([Arch.from_id(st["config"]["supernet"]) for st in states])
    charged = c.components(X, 100)["train"]
    took = np.array([st["train_seconds"] for st in states])
    assert len(states) == 3 and {st["tokens_seen"] for st in states} == {c.train_tokens}
    assert c.sources["train"]["source"] == "measured" and c.intercept_s > 0
    assert charged.sum() == pytest.approx(took.sum(), rel=1e-9)
    assert c.sources["train"]["max_rel_error"] == pytest.approx(np.max(np.abs(charged - took) / took), rel=1e-9)
    rate = SimulatedCost(c.problem, train_flop_per_s=1e9)                              # a caller's rate wins
    assert rate.train_flop_per_s == 1e9 and rate.intercept_s == 0 and rate.sources["train"]["source"] == "estimate"


def test_rehearsal_surrogates_never_go_into_the_package(rehearsal):
    from hwgptbench.paths import surrogates_dir
    from hwgptbench.surrogates import FitSettings, fit_all
    _, data = rehearsal
    before = (surrogates_dir() / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="rehearsal"):
        fit_all(data, surrogates_dir(), FitSettings(), spaces=["xs"], log=lambda *a: None)
    assert (surrogates_dir() / "manifest.json").read_bytes() == before


def test_split_half_agreement_separates_noise_from_a_moved_landscape():
    """Truths by construction: a fidelity equal to the final one reorders nothing (cross == same,
    exactly); one whose architectures are shuffled keeps no order (cross near 0)."""
    from hwgptbench.training.validity import split_half_agreement
    rng = np.random.default_rng(0)
    level = rng.normal(3.5, 0.3, 200)
    rows = [{"arch_id": f"a{i}", "window_nll": list(level[i] + rng.normal(0, 0.5, 64))} for i in range(200)]
    same = split_half_agreement(rows, rows, n_boot=50)
    assert same["cross"] == pytest.approx(same["same"]) and same["same_minus_cross_90"] == [0.0, 0.0]
    assert 0.5 < same["same"] < 1
    perm = rng.permutation(200)
    moved = [{"arch_id": f"a{i}", "window_nll": rows[perm[i]]["window_nll"]} for i in range(200)]
    out = split_half_agreement(moved, rows, n_boot=50)
    assert abs(out["cross"]) < 0.15 and out["same_minus_cross_90"][0] > 0.3


def test_standalone_arch_picks_one_network(rehearsal, capsys):
    from hwgptbench.training.pipeline import XS_REHEARSAL
    from hwgptbench.training.validity import standalone_archs
    work, _ = rehearsal
    ids = [a.id for a in standalone_archs("xs", XS_REHEARSAL.n_standalone, XS_REHEARSAL.n_partial)]
    capsys.readouterr()
    assert main(["xs-pipeline", "standalone", "--work", str(work), "--rehearsal", "--arch", ids[-1]]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"finished": {ids[-1]: True}}
    assert main(["xs-pipeline", "standalone", "--work", str(work), "--rehearsal", "--arch", "gpt-xs-nope"]) == 2
    assert "not a validity architecture" in capsys.readouterr().err
    assert main(["xs-pipeline", "score", "--work", str(work), "--rehearsal", "--arch", ids[0]]) == 2
    assert "--arch: picks a standalone network" in capsys.readouterr().err


def test_score_skips_a_standalone_network_that_has_only_just_begun(rehearsal, tmp_path):
    """A folder made by a trainer before its first checkpoint (no state.json yet) is not scored;
    the others still are."""
    import shutil
    work, _ = rehearsal
    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True)
    (copy / "standalone" / "gpt-xs-3-256-4-4-4-4-2-2-True").mkdir()
    assert main(["xs-pipeline", "score", "--work", str(copy), "--rehearsal"]) == 0
