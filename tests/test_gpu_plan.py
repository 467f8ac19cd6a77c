"""The GPU lease plan: budget logic, $OUT layout, merge refusals, the CUDA measuring path on a fake
CUDA, and the whole plan rehearsed on this CPU (killed with a real signal, resumed, merged)."""
import json
import shutil
import os
import signal
import subprocess
import sys
import tarfile
import time
import warnings

import numpy as np
import pytest

from hwgptbench.gpu_plan.budget import call_deadline, plan_lease, subset_sizes
from hwgptbench.gpu_plan.state import MAX_OUT_FILES, publish
from hwgptbench.tables import TableError, read_table, write_table


# ---- budget ---------------------------------------------------------------------------------------
def test_lease_plan_of_a_30_minute_lease_fits_and_keeps_the_evaluation_share():
    p = plan_lease(1800)
    # 1800 s minus a cold start (120 s) and 3 calls' transfers (3 x 45 s)
    assert p.work_s == pytest.approx(1800 - 120 - 135)
    fixed = p.preflight_s + p.calibrate_s + sum(p.profile_s.values()) + p.evaluate_s
    assert fixed < p.work_s
    assert p.train_budget(p.work_s - fixed + p.evaluate_s) == pytest.approx(p.work_s - fixed)
    assert p.train_budget(p.evaluate_s + 60) == 0.0            # under min_train_s: no supernet
    assert p.rows == {"s": 1000, "m": 500, "l": 300}
    assert p.eval_plan[0] == (100, 300) and (100, 1500) in p.eval_plan
    assert plan_lease(1800, warm=True).work_s == pytest.approx(p.work_s + 120)
    with pytest.raises(ValueError, match="lease_s"):
        plan_lease(100)
    with pytest.raises(ValueError, match="lease_s"):
        plan_lease(float("nan"))


def test_extra_stage_order_survives_the_state_files_sorted_keys():
    # state.json is written with sorted keys; the extra stage's order (m, l, then s) must survive it,
    # as it did not on the 2026-12-04 lease (the resumed call went to l before m's target)
    import json
    from hwgptbench.gpu_plan.budget import LeasePlan
    p = plan_lease(900)
    back = LeasePlan.from_json(json.loads(json.dumps(p.to_json(), sort_keys=True)))
    assert [s for s, _ in back.extra_rows] == ["m", "l", "s"]
    assert back == p


def test_a_15_minute_lease_profiles_and_trains_no_supernet():
    # 900 s: 900 - 120 (start) - 2 x 45 (transfers) = 690 s of work; after preflight, calibration and
    # the profiling shares, what is left minus the evaluation's share is under MIN_TRAIN_S = 420 s
    p = plan_lease(900)
    assert p.work_s == pytest.approx(690)
    left = p.work_s - p.preflight_s - p.calibrate_s - sum(p.profile_s.values())
    assert p.train_budget(left) == 0.0
    assert plan_lease(1800).train_budget(1800 - 120 - 135 - 600) > 420 - 1e-9


def test_subset_sizes_and_deadline_by_hand():
    # 300 s for 1000 rows of 0.15 s leaves 150 s: 100 s of energy at 1 s, 50 s of decode at 0.25 s
    assert subset_sizes(300, 1000, 0.15, 1.0, 0.25) == (100, 200)
    assert subset_sizes(300, 1000, 0.15, 1.0, 0.0) == (150, 0)
    assert subset_sizes(10, 1000, 0.15, 1.0, 0.25) == (20, 20)        # the floor lets a surrogate be fitted
    assert subset_sizes(10, 5, 0.15, 1.0, 0.0) == (5, 0)               # ...capped at the rows
    assert call_deadline(100.0, 560, 1800, 25) == 100.0 + 535
    assert call_deadline(100.0, 560, 300, 25) == 100.0 + 275           # the lease ends first


def test_publish_writes_at_most_eight_whole_files(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "tables").mkdir(parents=True)
    (work / "state.json").write_text("{}")
    (work / "log.txt").write_text("x\n")
    run = work / "supernet_s"
    run.mkdir()
    (run / "state.json").write_text('{"step": 1}')
    (run / "checkpoint.pt").write_bytes(b"weights never travel")
    tables = {}
    for i in range(5):
        p = work / "tables" / f"s_dev{i}.h5"
        p.write_bytes(b"t" * 10)
        tables[p.name] = p
    names = publish(work, out, tables, {"s": run})
    assert len(names) == MAX_OUT_FILES and sorted(os.listdir(out)) == sorted(names)
    with tarfile.open(out / "supernet_s.tar.gz") as tar:
        assert tar.getnames() == ["supernet_s/state.json"]
    extra = work / "tables" / "s_dev9.h5"
    extra.write_bytes(b"t")
    with pytest.raises(RuntimeError, match="would not all come back"):
        publish(work, out, {**tables, extra.name: extra}, {"s": run})


# ---- the CUDA path, on a fake CUDA -----------------------------------------------------------------
torch = pytest.importorskip("torch")


class _FakeEvent:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self):
        self.t = time.perf_counter()

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


class _CountingMeter:
    def __init__(self):
        self.reads = 0

    def read(self):
        self.reads += 1
        return int(time.perf_counter() * 1e6 * 100)      # 100 W

    @staticmethod
    def joules(a, b):
        return (b - a) / 1e6


def test_measure_cuda_logic_on_a_fake_cuda(monkeypatch):
    """measure_cuda cannot run here; its bookkeeping can: events, windows, energy, peak memory."""
    from hwgptbench import get_space
    from hwgptbench.profiling import measure
    from hwgptbench.profiling.run import build_model, weight_pool

    syncs = []
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda dev=None: syncs.append(dev))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda dev=None: None)
    sp = get_space("s")
    model = build_model(sp.smallest(), weight_pool("s", torch.device("cpu"), torch.float32, torch.Generator()))
    idx = torch.randint(0, 50257, (1, 8))
    # the process also holds a 77 MB weight pool: the model's own peak (weights, input, 3 MB of
    # activations) must not count it (the 2026-12-04 h200 rows did)
    own = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers(), idx))
    pool = 77 * 2 ** 20
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda dev=None: own + pool)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda dev=None: own + pool + 3 * 2 ** 20)
    meter = _CountingMeter()
    r = measure.measure_cuda(model, idx, warmup=1, repeats=4, meter=meter, window_s=0.02, windows=3)
    assert r["latency_ms"].shape == (4,) and np.all(r["latency_ms"] > 0)
    assert r["energy_J"].shape == (3,) and meter.reads == 6
    # 100 W for each window's duration, divided by its forwards: about 0.1 J per ms of forward
    per_fwd_s = np.asarray(r["_energy_window_s"]) / r["_energy_forwards"]
    assert r["_energy_forwards"].shape == (3,) and np.all(r["_energy_forwards"] >= 1)
    np.testing.assert_allclose(r["energy_J"], 100 * per_fwd_s, rtol=0.05)
    assert np.all(np.asarray(r["_energy_window_s"]) >= 0.02)
    assert r["memory_MB"].tolist() == [own / 2 ** 20 + 3.0] and len(syncs) >= 5
    none = measure.measure_cuda(model, idx, 0, 2, None, 0.02, 3)
    assert np.isnan(none["energy_J"]).all() and np.isnan(none["_energy_window_s"]).all()


# ---- rehearsal: the whole plan, killed, resumed, merged ---------------------------------------------
pytest.importorskip("tiktoken")
REHEARSAL = [sys.executable, "-m", "hwgptbench.gpu_plan", "--rehearsal", "--one-call"]


def _state(work):
    try:
        return json.loads((work / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def test_rehearsal_killed_resumed_merged_and_optimised(tmp_path):
    from hwgptbench import Benchmark
    from hwgptbench.gpu_plan.merge import merge_results
    from hwgptbench.gpu_plan.plan import PlanConfig, run_call
    from hwgptbench.moo.problem import Problem
    from hwgptbench.moo.runner import run
    from hwgptbench.profiling.profiling_set import profiling_set

    work, out = tmp_path / "work", tmp_path / "out"
    lease, call_s = 100.0, 25.0      # enough for every stage also on a loaded machine
    t_start = time.time()
    # the first call may take the whole lease (a busy machine must still reach profiling to kill it)
    proc = subprocess.Popen(REHEARSAL + ["--out", str(out), "--work-dir", str(work), "--lease-left", str(lease),
                                         "--call-seconds", str(lease)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    table = work / "tables" / "s_rehearsal.h5"
    killed_rows = 0
    while time.time() - t_start < 300 and proc.poll() is None:
        if _state(work).get("stages", {}).get("profile_s", {}).get("status") == "running" and table.exists():
            try:
                killed_rows = len(read_table(table))
            except (TableError, OSError):
                pass
        if killed_rows >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the call finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)                     # mid-stage: profiling s
    proc.wait()
    assert _state(work)["stages"]["profile_s"]["status"] == "running"
    assert 3 <= len(read_table(table)) < 30
    assert json.loads((out / "state.json").read_text())["lease_plan"]   # $OUT already held the state

    cfg = PlanConfig(rehearsal=True)
    state, calls = None, 0
    while calls < 8:
        # the lease's clock runs down as on the device, with a floor so a busy machine still finishes
        left = max(lease - (time.time() - t_start), 30.0)
        if out.exists():                                  # as on the device: $OUT is emptied before a call
            for p in out.iterdir():
                p.unlink()
        state = run_call(cfg, out, work, min(call_s, left), left)
        calls += 1
        if state.get("done"):
            break
    assert state["done"] and all(st["status"] == "done" for st in state["stages"].values()), state["stages"]
    assert state["stages"]["profile_s"]["calls"] == 2
    names = sorted(os.listdir(out))
    assert len(names) <= MAX_OUT_FILES and "supernet_s.tar.gz" in names and "s_rehearsal.h5" in names
    assert "s_rehearsal_host.h5" in names
    assert not [n for n in names if n.endswith(".partial")]

    s = read_table(out / "s_rehearsal.h5")                # resumed without duplicates or gaps
    assert s.arch_ids == [a.id for a in profiling_set("s", len(s))] and len(s) >= 30
    assert len(s.provenance["runs"]) >= 2 and all(r["git_commit"] and r["command"] for r in s.provenance["runs"])
    assert s.sources["energy_J"] == "modelled"             # the rehearsal's fake meter says so
    n_e = state["calibration"]["s"]["energy_first"]
    assert np.isfinite(s.raw["energy_J"][:n_e]).all() and np.isnan(s.raw["energy_J"][n_e:]).all()
    n_d = state["calibration"]["s"]["decode_first"]              # decode on a stated prefix too
    assert 0 < n_d and np.isfinite(s.raw["decode_ms"][:n_d]).all() and np.isnan(s.raw["decode_ms"][n_d:]).all()
    assert s.provenance["protocol_key"]["decode_tokens"] == 4 and s.units["decode_ms"] == "ms"

    data, sur = tmp_path / "data", tmp_path / "sur"
    summary = merge_results(out, data_dir=data, surrogates_dir=sur, fronts=False, allow_rehearsal=True,
                            log=lambda *a: None)
    for p in summary["tables"]:
        t = read_table(p)
        assert t.provenance.get("runs") or t.provenance.get("training"), p
    ppl = read_table(data / "s" / "perplexity.h5")
    assert {f"perplexity_f{p}" for p in (25, 50, 75, 100)} <= set(ppl.raw)
    assert ppl.provenance["training"]["run_id"]
    assert "latency_ms@rehearsal" in summary["surrogates"] and "perplexity_f100" in summary["surrogates"]
    again = merge_results(out, data_dir=data, surrogates_dir=sur, refit=False, fronts=False,
                          allow_rehearsal=True, log=lambda *a: None)
    assert all(v["added"] == 0 for v in again["tables"].values())      # never duplicated
    with pytest.raises(ValueError, match="rehearsal"):
        merge_results(out, data_dir=data, refit=False, fronts=False, log=lambda *a: None)
    # the mark cannot be edited away: the tables carry it too (issue 21)
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    st = json.loads((forged / "state.json").read_text())
    st["config"]["rehearsal"] = False
    (forged / "state.json").write_text(json.dumps(st))
    with pytest.raises(ValueError, match="rehearsal"):
        merge_results(forged, data_dir=tmp_path / "d2", refit=False, fronts=False, log=lambda *a: None)
    # ... and allowed, it never writes into the package's data, surrogates or fronts
    from hwgptbench.paths import data_dir as shipped_data
    for kw, field in (({"data_dir": shipped_data(), "refit": False, "fronts": False}, "data_dir"),
                      ({"data_dir": tmp_path / "d3", "fronts": False}, "surrogates_dir"),
                      ({"data_dir": tmp_path / "d4", "refit": False}, "fronts")):
        with pytest.raises(ValueError, match=field):
            merge_results(out, allow_rehearsal=True, log=lambda *a: None, **kw)
    assert not (tmp_path / "d3").exists() and not (tmp_path / "d4").exists()

    bench = Benchmark("s", surrogates=sur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # no shipped bounds for this scratch problem
        P = Problem("s", ["perplexity", "latency_ms@rehearsal"], benchmark=bench)
    assert P.fidelities == (25, 50, 75, 100)
    df = run(P, "moasha", budget=30, seed=0)
    assert len(df) == 30 and set(df["fidelity"]) >= {25, 50}


def test_merge_refuses_other_protocol_hardware_or_run_and_writes_nothing(tmp_path):
    from hwgptbench.gpu_plan.merge import merge_results
    from hwgptbench.profiling.profiling_set import profiling_set
    from hwgptbench.tables import Table

    def table(n, gpu="NVIDIA H100 80GB HBM3", key=None):
        archs = profiling_set("s", n)
        return Table("profile", "s", "h100", [a.id for a in archs], np.arange(n),
                     {"latency_ms": np.full((n, 2), 5.0)}, {"latency_ms": "ms"}, {"latency_ms": "measured"},
                     {"device": "h100", "hardware": {"gpu": {"gpu_name": gpu}},
                      "protocol_key": key or {"backend": "cuda", "batch": 8, "seq": 1024, "dtype": "bfloat16"},
                      "runs": []})

    data = tmp_path / "data"
    write_table(table(3), data / "s" / "h100.h5")
    before = (data / "s" / "h100.h5").read_bytes()
    for name, bad in (("hardware", table(5, gpu="NVIDIA H200")),
                      ("protocol", table(5, key={"backend": "cuda", "batch": 1, "seq": 1024, "dtype": "bfloat16"}))):
        res = tmp_path / name
        res.mkdir()
        (res / "state.json").write_text(json.dumps({"config": {"rehearsal": False}}))
        write_table(bad, res / "s_h100.h5")
        with pytest.raises(TableError, match=name):
            merge_results(res, data_dir=data, refit=False, fronts=False, log=lambda *a: None)
        assert (data / "s" / "h100.h5").read_bytes() == before
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "state.json").write_text("{}")
    with tarfile.open(evil / "supernet_s.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("../../escape.json")
        info.size = 2
        tar.addfile(info, __import__("io").BytesIO(b"{}"))
    with pytest.raises(ValueError, match="unexpected member"):
        merge_results(evil, data_dir=data, refit=False, fronts=False, log=lambda *a: None)
    assert not (tmp_path / "escape.json").exists()


def test_cli_errors_name_the_field(tmp_path, capsys):
    from hwgptbench.cli.gpu_plan import main
    assert main(["merge"]) == 2 and "results" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "nope")]) == 2 and "not a folder" in capsys.readouterr().err
    assert main(["--lease-left", "50", "--out", str(tmp_path / "o"), "--work-dir", str(tmp_path / "w")]) == 2
    assert "lease_s" in capsys.readouterr().err
    assert main([]) == 2 and "--out" in capsys.readouterr().err


def test_a_missing_damaged_or_foreign_part_of_a_lease_is_named_and_nothing_merges(tmp_path):
    """publish() lists every part it writes with its sha256 in the returned state.json; reading the
    folder back checks each (issue 21: a DIR whose table was removed used to merge with rc 0)."""
    from hwgptbench.gpu_plan.merge import merge_results, read_results_dir
    from hwgptbench.gpu_plan.state import publish
    from hwgptbench.profiling.profiling_set import profiling_set
    from hwgptbench.tables import Table

    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    (work / "state.json").write_text(json.dumps({"version": 1, "stages": {}, "config": {}}))
    (work / "log.txt").write_text("log\n")
    archs = profiling_set("s", 3)
    t = Table("profile", "s", "h100", [a.id for a in archs], np.arange(3), {"latency_ms": np.full((3, 2), 5.0)},
              {"latency_ms": "ms"}, {"latency_ms": "measured"},
              {"device": "h100", "hardware": {"gpu": {"gpu_name": "NVIDIA H100 80GB HBM3"}},
               "protocol_key": {"backend": "cuda", "batch": 8, "seq": 1024, "dtype": "bfloat16"}, "runs": []})
    write_table(t, work / "s_h100.h5")
    publish(work, out, {"s_h100.h5": work / "s_h100.h5"}, {})
    state = json.loads((out / "state.json").read_text())
    assert set(state["published"]) == {"s_h100.h5"}
    assert read_results_dir(out, tmp_path / "x1")["tables"]["s_h100.h5"].arch_ids == t.arch_ids

    def broken(name, how):
        d = tmp_path / name
        shutil.copytree(out, d)
        how(d)
        return d
    missing = broken("missing", lambda d: (d / "s_h100.h5").unlink())
    damaged = broken("damaged", lambda d: (d / "s_h100.h5").write_bytes((d / "s_h100.h5").read_bytes()[:-1] + b"x"))
    foreign = broken("foreign", lambda d: shutil.copy(d / "s_h100.h5", d / "m_h100.h5"))
    for d, needle in ((missing, "s_h100.h5' is missing"), (damaged, "differs from what the lease published"),
                      (foreign, "not parts of this lease")):
        with pytest.raises((ValueError, FileNotFoundError), match=needle):
            merge_results(d, data_dir=tmp_path / "data", refit=False, fronts=False, log=lambda *a: None)
        assert not (tmp_path / "data").exists()
    # surrogates and fronts follow the data: a scratch merge never refits into the package's (issue 21)
    for kw, needle in (({}, "surrogates_dir"), ({"refit": False}, "fronts")):
        with pytest.raises(ValueError, match=needle):
            merge_results(out, data_dir=tmp_path / "data", log=lambda *a: None, **kw)
        assert not (tmp_path / "data").exists()
    merge_results(out, data_dir=tmp_path / "data", refit=False, fronts=False, log=lambda *a: None)
    assert read_table(tmp_path / "data" / "s" / "h100.h5").arch_ids == t.arch_ids


@pytest.mark.parametrize("state,needle", [
    ({"stages": "oops"}, "stages is str, expected dict"),
    ({"stages": {"profile_s": 3}}, "stages.profile_s is int, expected an object"),
    ({"stages": {"profile_s": {"status": "done"}}}, "stages.profile_s has a status, seconds or calls"),
    ({"calibration": {"s": []}}, "calibration.s is list"),
    ({"calls": {}}, "calls is dict, expected list"),
])
def test_a_malformed_state_is_an_error_naming_the_field(tmp_path, state, needle):
    from hwgptbench.gpu_plan.report import report
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match=needle):
        report(tmp_path)
