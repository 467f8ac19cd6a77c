"""The versioned suite, the leaderboard statistics (against hand computations and Demšar's table)
and `hwgptbench reproduce` -> `hwgptbench leaderboard` end to end."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("moocore")
pytest.importorskip("pymoo")
pytest.importorskip("matplotlib")

from hwgptbench.cli import main  # noqa: E402
from hwgptbench.moo import get_problem  # noqa: E402
from hwgptbench.moo.indicators import hypervolume  # noqa: E402
from hwgptbench.moo.leaderboard import (cliques, critical_difference, friedman, leaderboard,  # noqa: E402
                                        mean_ranks, read_suite_results)
from hwgptbench.moo.problem import STANDARD_PROBLEMS  # noqa: E402
from hwgptbench.moo.runner import write_results  # noqa: E402
from hwgptbench.moo.suite import SUITES_FILE, get_suite, parse_suite, suite_versions  # noqa: E402

# ---- the suite ---------------------------------------------------------------------------------------


def test_suite_splits_the_standard_problems_and_pins_the_shipped_bounds():
    S = get_suite()                                      # the newest version pins what ships now
    assert S.version == suite_versions()[-1] and "hwgptbench-suite/1" in suite_versions()
    dev, test = set(S.problems("dev")), set(S.problems("test"))
    assert not dev & test and dev | test == set(STANDARD_PROBLEMS)
    assert get_suite("hwgptbench-suite/1").budget == 200
    assert get_suite("hwgptbench-suite/1").seeds == tuple(range(10))
    registry = json.loads((SUITES_FILE.parent / "problems.json").read_text())["problems"]
    assert set(S.pinned) == set(registry)                # every shipped problem, nothing else
    for name, p in S.pinned.items():
        lo, up = np.array(registry[name]["lower"]), np.array(registry[name]["upper"])
        assert p["lower"] == lo.tolist() and p["upper"] == up.tolist()
        assert np.allclose(p["ref_point"], lo + 1.1 * (up - lo))
        S.check(name)                                    # the package serves the same problem
    ok, why = S.available()
    assert set(ok) == set(registry)
    # our own perplexity is served for xs (CPU-trained) and not yet for s (it needs a GPU)
    assert set(why) == {p for p in STANDARD_PROBLEMS if p.startswith("s:perplexity,")}
    assert {p for p in ok if p.startswith("xs:perplexity,")} == {p for p in STANDARD_PROBLEMS if p.startswith("xs:")}
    assert all("not available yet" in w for w in why.values())
    # both splits hold problems available now, of both sizes of objective vector
    for split in ("dev", "test"):
        assert any(n in S.pinned for n in S.problems(split))
    assert {get_problem(n).n_obj for n in ok if n in dev} == {2, 3}


def test_suite_refuses_a_changed_problem_and_bad_definitions():
    S = get_suite()
    name = "s:-params,flops"
    moved = dict(S.pinned[name], upper=[S.pinned[name]["upper"][0], S.pinned[name]["upper"][1] * 1.01])
    with pytest.raises(ValueError, match="changed"):
        dataclasses.replace(S, pinned={**S.pinned, name: moved}).check(name)
    with pytest.raises(ValueError, match="not available in suite"):
        S.check("s:perplexity,latency_ms@h100")
    with pytest.raises(ValueError, match="unknown version"):
        get_suite("hwgptbench-suite/0")
    with pytest.raises(ValueError, match="split"):
        S.problems("train")
    entry = json.loads(SUITES_FILE.read_text())["suites"][S.version]
    bad_ref = json.loads(json.dumps(entry))
    bad_ref["pinned"][name]["ref_point"][0] += 1.0
    with pytest.raises(ValueError, match="ref_point"):
        parse_suite("x", bad_ref)
    twice = json.loads(json.dumps(entry))
    twice["splits"]["test"].append(name)
    with pytest.raises(ValueError, match="one split"):
        parse_suite("x", twice)
    with pytest.raises(ValueError, match="budget"):
        parse_suite("x", {**entry, "budget": 0})


# ---- statistics ------------------------------------------------------------------------------------------

# Demšar (2006), Table 5(a): critical values q_alpha of the two-tailed Nemenyi test, k = 2..10
# (printed to 3 decimals, some truncated: 2.3437 is printed 2.343)
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
DEMSAR_Q10 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]


def test_critical_difference_matches_demsar_table():
    for k, q05, q10 in zip(range(2, 11), DEMSAR_Q05, DEMSAR_Q10):
        unit = np.sqrt(k * (k + 1) / 6.0)                # CD with N = 1 is q * sqrt(k(k+1)/6)
        assert critical_difference(k, 1) / unit == pytest.approx(q05, abs=1e-3)
        assert critical_difference(k, 1, alpha=0.10) / unit == pytest.approx(q10, abs=1e-3)
    # k = 5 optimizers, N = 10 problems: 2.728 * sqrt(5 * 6 / 60) = 1.929
    assert critical_difference(5, 10) == pytest.approx(1.929, abs=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        critical_difference(5, 10, alpha=1.5)


def test_friedman_and_ranks_by_hand():
    # 4 problems x 3 optimizers (higher is better); per-problem ranks 1,2,3 / 1,3,2 / 2,1,3 / 1,2,3
    scores = np.array([[0.9, 0.5, 0.1], [0.8, 0.2, 0.4], [0.6, 0.7, 0.3], [0.9, 0.8, 0.7]])
    assert mean_ranks(scores) == pytest.approx([1.25, 2.0, 2.75])
    # chi2_F = 12 N / (k (k+1)) * (sum R_j^2 - k (k+1)^2 / 4) = 4 * (13.125 - 12) = 4.5;
    # with 2 degrees of freedom p = exp(-4.5 / 2)
    chi2, p = friedman(scores)
    assert chi2 == pytest.approx(4.5) and p == pytest.approx(np.exp(-2.25))
    assert mean_ranks([[0.5, 0.5, 0.2]]) == pytest.approx([1.5, 1.5, 3.0])   # ties share
    with pytest.raises(ValueError, match=">= 3 optimizers"):
        friedman(scores[:, :2])


def test_cliques_are_maximal_runs_closer_than_cd():
    ranks = [1.5, 1.9, 3.25, 4.75, 5.0, 5.0, 6.5]
    assert cliques(ranks, 2.85) == [(0, 2), (2, 5), (3, 6)]
    assert cliques(ranks, 0.1) == [(4, 5)]               # only the tie
    assert cliques([1.0, 2.0, 3.0], 5.0) == [(0, 2)]


# ---- reproduce -> leaderboard end to end ----------------------------------------------------------------
OPTIMIZERS = ("rs", "pls", "nsga2")


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory):
    from hwgptbench.moo.reproduce import reproduce
    out = tmp_path_factory.mktemp("suite_run")
    text = reproduce(out=out, budget=20, seeds=2, workers=1, split="test", optimizers=OPTIMIZERS,
                     progress=False)
    return out, text


def test_reproduce_records_the_suite_and_writes_leaderboard_and_figures(suite_run):
    out, text = suite_run
    df = pd.read_csv(out / "results.csv")
    # the newest suite (hwgptbench-suite/4) by default; its test split's problems available now
    assert set(df["suite"]) == {"hwgptbench-suite/4"} and set(df["split"]) == {"test"}
    hwgpt = {f"{sp}:perplexity_hwgpt,{c}" for sp in "sml"
             for c in ("latency_ms@h100", "latency_ms@cpu_xeon_f6m207_2c", "decode_ms@cpu_xeon_f6m207_2c")}
    xs = {f"xs:perplexity,{c}" for c in ("latency_ms@cpu_epyc_f25m17_2c", "decode_ms@cpu_epyc_f25m17_2c")}
    assert set(df["problem"]) == {"s:-params,memory_MB_analytic", "s:-params,latency_ms@cpu_xeon_2c",
                                  "s:-params,latency_ms@cpu_xeon_f6m207_2c"} | hwgpt | xs
    assert set(df.loc[df["optimizer"] == "moasha", "problem"]) == xs        # where there is a fidelity axis
    assert "NOT the suite's setting" in text and "Friedman test over N = 14 problems, k = 3" in text
    assert "Left out of the test (not run on every problem): moasha (2 of 14 problems)" in text
    for name in ("leaderboard_test.md", "cd_diagram_test.png", "ranking.md"):
        assert (out / name).stat().st_size > 0
    for kind in ("fronts", "hv", "attainment"):
        assert len(list(out.glob(f"*_{kind}.png"))) == 14
    assert len(list(out.glob("*_eafdiff.png"))) <= 14       # where the best optimizer is not rs


def test_leaderboard_ranks_what_the_runs_reached(suite_run, tmp_path, capsys):
    out, _ = suite_run
    assert main(["leaderboard", str(out), "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "leaderboard_test.md").read_text().strip() == text.strip()
    assert (tmp_path / "cd_diagram_test.png").stat().st_size > 0
    # independent truth: final hypervolumes straight from the stored objective columns
    df = pd.read_csv(out / "results.csv")
    df = df[df["optimizer"] != "moasha"]          # left out of the ranking: it ran on the xs problems only
    hv = {}
    for (prob, opt, seed), g in df.groupby(["problem", "optimizer", "seed"]):
        P = get_problem(prob)
        hv.setdefault((prob, opt), []).append(hypervolume(g[[f"f:{o}" for o in P.objectives]], P.ref_point))
    M = pd.Series({k: np.mean(v) for k, v in hv.items()}).unstack()      # problems x optimizers
    ranks = M.rank(axis=1, ascending=False).mean()
    for opt, r in ranks.items():
        assert f"| {opt} | " in text and text.split(f"| {opt} | ")[1].split("\n")[0].endswith(f"| {r:.2f} |")
    from scipy.stats import friedmanchisquare
    chi2 = friedmanchisquare(*M.to_numpy().T).statistic
    assert f"chi^2 = {chi2:.2f}" in text
    assert f"CD = {critical_difference(3, 14):.2f}" in text


def test_leaderboard_refuses_results_it_cannot_compare(suite_run, tmp_path):
    out, _ = suite_run
    df = pd.read_csv(out / "results.csv")
    other = df.assign(suite="hwgptbench-suite/0", seed=df["seed"] + 100)
    write_results(other, tmp_path / "other.csv")
    with pytest.raises(ValueError, match="different suite versions"):
        read_suite_results([out, tmp_path / "other.csv"])
    with pytest.raises(ValueError, match="in both"):
        read_suite_results([out, out / "results.csv"])
    write_results(df.assign(split="dev"), tmp_path / "mislabelled.csv")
    with pytest.raises(ValueError, match="labelled split 'dev'"):
        read_suite_results(tmp_path / "mislabelled.csv")
    write_results(df.drop(columns=["suite", "split"]), tmp_path / "plain.csv")     # as `hwgptbench run` writes
    with pytest.raises(ValueError, match="ranks runs of 200: rerun with --budget 200"):
        read_suite_results(tmp_path / "plain.csv")
    write_results(df.drop(columns=["problem"]), tmp_path / "noproblem.csv")
    with pytest.raises(ValueError, match=r"no column\(s\) \['problem'\]"):
        read_suite_results(tmp_path / "noproblem.csv")
    one = df[df["problem"] == "s:-params,memory_MB_analytic"].rename(columns={"f:memory_MB_analytic": "f:flops"})
    write_results(one.assign(problem="m:-params,flops").drop(columns=["suite", "split"]), tmp_path / "unpinned.csv")
    with pytest.raises(ValueError, match="does not pin"):
        read_suite_results(tmp_path / "unpinned.csv")
    short = df[~((df["optimizer"] == "rs") & (df["seed"] == 0) & (df["eval"] >= 10))]
    write_results(short, tmp_path / "short.csv")
    with pytest.raises(ValueError, match="different budgets"):
        read_suite_results(tmp_path / "short.csv")
    write_results(df[~((df["optimizer"] == "rs") & (df["seed"] == 1))], tmp_path / "seeds.csv")
    with pytest.raises(ValueError, match="same seeds"):
        read_suite_results(tmp_path / "seeds.csv")
    with pytest.raises(ValueError, match="no results of split 'dev'"):
        leaderboard(out, split="dev")
    assert main(["leaderboard", str(tmp_path / "missing")]) == 2


def test_leaderboard_verifies_results_as_evidence(suite_run, tmp_path):
    """Edited, truncated, unverifiable, duplicated or non-finite results are refused, naming the
    file (and the row and column); valid results still combine (issue 21)."""
    import shutil
    out, _ = suite_run
    df = pd.read_csv(out / "results.csv")
    obj = [c for c in df.columns if c.startswith("f:")][0]

    def folder(name, frame=None, edit=None):
        d = tmp_path / name
        shutil.copytree(out, d)
        if frame is not None:
            write_results(frame, d / "results.csv")             # a consistent file and manifest
        if edit is not None:
            edit(d / "results.csv")                             # changed after it was written
        return d
    scaled = df.copy()
    scaled.loc[scaled["optimizer"] == "rs", obj] *= 0.5
    cases = [
        (folder("scaled", edit=lambda f: scaled.to_csv(f, index=False)), "does not match its manifest"),
        (folder("cut", edit=lambda f: f.write_text("\n".join(f.read_text().splitlines()[:-40]) + "\n")),
         "does not match its manifest"),
        (folder("nomanifest", edit=lambda f: (f.parent / "results.csv.manifest.json").unlink()), "no readable manifest"),
        (folder("twice", pd.concat([df, df.iloc[:5]], ignore_index=True)), "appears twice"),
        (folder("nan", df.assign(**{obj: df[obj].where(df.index != 7)})), rf"data row 8, column '{obj}'"),
    ]
    for d, message in cases:
        with pytest.raises(ValueError, match=message) as e:
            read_suite_results(d)
        assert str(d) in str(e.value)
    # valid results of other seeds, in another folder, still combine
    write_results(df.assign(seed=df["seed"] + 100), tmp_path / "more.csv")
    both, _ = read_suite_results([out, tmp_path / "more.csv"])
    assert len(both) == 2 * len(df)


def test_a_run_folder_joins_the_suite_of_its_problems(suite_run, tmp_path, monkeypatch):
    """`hwgptbench run` results carry no suite columns: with the suite's budget they are labelled as
    reproduce labels them, and rank beside reproduce's results."""
    import dataclasses

    from hwgptbench.moo import leaderboard as lb
    out, _ = suite_run
    df = pd.read_csv(out / "results.csv")
    suite = lb.get_suite("hwgptbench-suite/4")
    monkeypatch.setattr(lb, "get_suite", lambda v=None: dataclasses.replace(suite, budget=20))
    write_results(df.drop(columns=["suite", "split"]), tmp_path / "plain.csv")
    got, _ = read_suite_results(tmp_path / "plain.csv")
    pd.testing.assert_series_equal(got["split"], df["split"], check_names=False)
    assert set(got["suite"]) == {"hwgptbench-suite/4"}
    mine = df[df["optimizer"] == "rs"].assign(optimizer="mine").drop(columns=["suite", "split"])
    write_results(mine, tmp_path / "mine.csv")
    both, _ = read_suite_results([out, tmp_path / "mine.csv"])
    assert set(both["optimizer"]) == set(OPTIMIZERS) | {"mine", "moasha"}
