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
from hwgptbench.tables import read_table  # noqa: E402


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    work, data = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("data")
    for stage in ("train", "standalone", "score", "table", "validity"):
        assert main(["xs-pipeline", stage, "--work", str(work), "--rehearsal", "--data-dir", str(data)]) == 0
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


def test_rehearsal_validity_report_compares_with_standalone_networks(rehearsal):
    work, _ = rehearsal
    rep = json.loads((work / "validity.json").read_text())
    assert set(rep["standalone"]) == {"25", "50", "75", "100"}
    assert rep["standalone"]["100"]["n"] == 3 and len(rep["standalone_ppl"]) == 3
    for d in (work / "standalone").iterdir():             # each standalone run trained and scored itself only
        rows = [json.loads(ln) for ln in (d / "eval_xs_f100.jsonl").read_text().splitlines()]
        assert [r["arch_id"] for r in rows] == [d.name]


def test_rehearsal_refuses_the_package_data(rehearsal, capsys):
    from hwgptbench.paths import data_dir
    work, _ = rehearsal
    assert main(["xs-pipeline", "table", "--work", str(work), "--rehearsal", "--data-dir", str(data_dir())]) == 2
    assert "package's data" in capsys.readouterr().err


def test_rehearsal_serves_fidelities_and_moasha_uses_them(rehearsal, tmp_path):
    from hwgptbench import Benchmark
    from hwgptbench.moo.problem import Problem
    from hwgptbench.moo.runner import run
    _, data = rehearsal
    sur = tmp_path / "sur"
    assert main(["fit-surrogates", "--data", str(data), "--out", str(sur), "--spaces", "xs"]) == 0
    assert all(e.get("rehearsal") for e in json.loads((sur / "manifest.json").read_text())["surrogates"].values())
    bench = Benchmark("xs", surrogates=sur)
    arch = bench.sample(1, seed=0)[0]
    cols = [f"perplexity_f{p}" for p in (25, 50, 75, 100)]
    r = bench.query(arch, metrics=cols + ["params"])
    assert all(np.isfinite(r[c]) and r[c] > 0 for c in cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # no shipped bounds for this scratch problem
        P = Problem("xs", ["perplexity", "params"], benchmark=bench)
        df = run(P, "moasha", budget=20, seed=0)
    assert P.fidelities == (25, 50, 75, 100)
    assert len(df) == 20 and set(df["fidelity"]) >= {25, 50}


def test_rehearsal_surrogates_never_go_into_the_package(rehearsal):
    from hwgptbench.paths import surrogates_dir
    from hwgptbench.surrogates import FitSettings, fit_all
    _, data = rehearsal
    before = (surrogates_dir() / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="rehearsal"):
        fit_all(data, surrogates_dir(), FitSettings(), spaces=["xs"], log=lambda *a: None)
    assert (surrogates_dir() / "manifest.json").read_bytes() == before
