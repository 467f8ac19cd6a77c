"""CPU protocol v2: rounds over blocks, the sentinel series, load per row, resume after a kill."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hwgptbench.profiling.profiling_set import profiling_set  # noqa: E402
from hwgptbench.profiling.rounds import journal_path  # noqa: E402
from hwgptbench.tables import read_table  # noqa: E402

V2 = ["profile", "--space", "s", "--backend", "cpu", "--protocol", "2", "--seq", "8", "--repeats", "2",
      "--rounds", "2", "--block", "3", "--sentinel-every", "2", "--decode-prefill", "4", "--decode-tokens", "2",
      "--device", "testcpu", "--quiet"]


def _cli(args):
    from hwgptbench.cli import main
    return main(args)


def test_rounds_rows_series_and_load(tmp_path):
    out = tmp_path / "v2.h5"
    assert _cli(V2 + ["-n", "5", "--table", str(out)]) == 0
    t = read_table(out)
    assert t.arch_ids == [a.id for a in profiling_set("s", 5)]
    # 2 rounds x 2 repeats per row, in time order; decode: 2 rounds x 1 repeat
    assert t.raw["latency_ms"].shape == (5, 4) and np.isfinite(t.raw["latency_ms"]).all()
    assert t.raw["decode_ms"].shape == (5, 2) and np.isfinite(t.raw["decode_ms"]).all()
    assert t.raw["memory_MB"].shape == (5, 1)
    assert t.provenance["protocol_key"]["version"] == 2 and t.provenance["protocol"]["rounds"] == 2
    s = t.series["sentinel_latency_ms"]
    assert s.shape[1] == 3 and np.all(np.diff(s[:, 0]) > 0)          # (time, 2 repeats), in time order
    # blocks of 3 and 2 rows: a sentinel every 2 visits (3 + 2 per block) and one closing each block
    assert len(s) == (3 + 1) + (2 + 1)
    assert np.all(t.extra["last_visit_at"] > t.extra["measured_at"])
    assert np.all(t.extra["load1_max"] >= 0) and "others_busy_max" in t.extra
    lvl = t.extra["sentinel_level_latency_ms"]
    assert np.all(np.isfinite(lvl)) and np.all((lvl > 0.2) & (lvl < 5))
    assert t.provenance["sentinel"]["arch"].startswith("gpt-s-11-384-")
    assert np.all(t.extra["processes"] == 1)                         # all visits by this process
    assert not list(tmp_path.glob(".v2.h5.visits*"))
    # a v1 table of the same space and device is another protocol: never mixed
    assert _cli(["profile", "--space", "s", "--backend", "cpu", "--seq", "8", "--threads", "1", "--device",
                 "testcpu", "--quiet", "-n", "6", "--table", str(out)]) == 2


def test_killed_mid_block_resumes_with_the_visits_already_made(tmp_path):
    out = tmp_path / "k.h5"
    side = journal_path(out, list(range(6)))
    cmd = [sys.executable, "-m", "hwgptbench.cli"] + V2 + ["--block", "6", "-n", "6", "--table", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    lines = []
    while time.time() < deadline and proc.poll() is None:
        if side.exists():
            lines = [ln for ln in side.read_text().splitlines() if '"kind": "visit"' in ln]
        if len(lines) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()                      # the block was not complete: no row yet
    before = [json.loads(ln) for ln in side.read_text().splitlines() if '"kind": "visit"' in ln]
    assert len(before) >= 4
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = read_table(out)
    assert t.arch_ids == [a.id for a in profiling_set("s", 6)]
    assert len(t.provenance["runs"]) == 2          # the killed process's run is named too
    assert t.provenance["runs"][0]["pid"] == before[0]["pid"]
    for v in before:                              # the visits made before the kill are in the rows
        row = t.raw["latency_ms"][t.index.tolist().index(v["i"])]
        assert any(np.allclose(row[k:k + 2], v["raw"]["latency_ms"]) for k in (0, 2))
    assert not side.exists()


def test_one_round_per_process_makes_every_visit_in_another_process(tmp_path):
    """--one-round: each call (a real fresh process) completes one round and stops; the rows are
    written when the last round is done, each with its visits from `rounds` different processes."""
    out = tmp_path / "o.h5"
    side = journal_path(out, [0, 1, 2])
    cmd = [sys.executable, "-m", "hwgptbench.cli"] + V2 + ["-n", "3", "--one-round", "--table", str(out)]
    first = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert "one round done (0 rows completed); 3 architectures still need visits" in first.stdout
    assert not out.exists()                      # round 1 of 2: no row yet, the visits are journalled
    visits = [json.loads(ln) for ln in side.read_text().splitlines() if '"kind": "visit"' in ln]
    assert sorted(v["i"] for v in visits) == [0, 1, 2] and {v["round"] for v in visits} == {0}
    assert len({v["pid"] for v in visits}) == 1
    second = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert second.stdout.strip().endswith("o.h5") and not side.exists()
    t = read_table(out)
    assert t.arch_ids == [a.id for a in profiling_set("s", 3)]
    assert np.all(t.extra["processes"] == 2) and t.raw["latency_ms"].shape == (3, 4)
    runs = t.provenance["runs"]                  # both processes' provenance, in the order they ran
    assert len(runs) == 2 and runs[0]["pid"] == visits[0]["pid"] != runs[1]["pid"]
    assert all("--one-round" in r["command"] for r in runs) and runs[0]["started"] <= runs[1]["started"]
    for v in visits:                             # round 1's visits, by the first process, are in the rows
        row = t.raw["latency_ms"][t.index.tolist().index(v["i"])]
        assert any(np.allclose(row[k:k + 2], v["raw"]["latency_ms"]) for k in (0, 2))
    assert _cli(["profile", "--space", "s", "--backend", "cpu", "--one-round", "--device", "testcpu", "--quiet",
                 "-n", "1", "--table", str(tmp_path / "v1.h5")]) == 2     # protocol 1 has no rounds



def _one_round(out, indices):
    return _cli(V2 + ["--indices", indices, "--one-round", "--table", str(out)])


def _lines(path):
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def _rewrite(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_journals_of_other_blocks_are_kept_and_resumed(tmp_path):
    """Measured visits are never deleted: round 1 of block [0, 1], then block [2, 3], then [0, 1]
    again finishes the first block with the visits of its first process."""
    out = tmp_path / "j.h5"
    assert _one_round(out, "0-1") == 0
    first = journal_path(out, [0, 1])
    kept = first.read_bytes()
    assert _one_round(out, "2-3") == 0
    assert first.read_bytes() == kept and journal_path(out, [2, 3]).exists()
    assert _one_round(out, "0-1") == 0                     # round 2 of [0, 1]: rows written
    t = read_table(out)
    assert t.arch_ids == [a.id for a in profiling_set("s", 2)] and t.raw["latency_ms"].shape == (2, 4)
    assert not first.exists() and journal_path(out, [2, 3]).exists()


@pytest.mark.parametrize("fault,needle", [
    ("edit", "checksum"), ("nan", "checksum"), ("nan_resealed", "positive finite"),
    ("foreign_host", "another machine"), ("other_table", "belongs to table"), ("middle_cut", "not JSON")])
def test_an_untrustworthy_journal_line_stops_the_run_with_its_number(tmp_path, capsys, fault, needle):
    from hwgptbench.profiling.rounds import _line_sha
    out = tmp_path / "f.h5"
    assert _one_round(out, "0-1") == 0
    path = journal_path(out, [0, 1])
    recs = _lines(path)
    k = next(n for n, r in enumerate(recs) if r["kind"] == "visit")
    if fault == "edit":
        recs[k]["raw"]["latency_ms"] = [v * 1000 for v in recs[k]["raw"]["latency_ms"]]
    elif fault in ("nan", "nan_resealed"):
        recs[k]["raw"]["decode_ms"] = [float("nan")]
    elif fault == "foreign_host":
        recs[k]["host"] = "AMD EPYC (another host) [elsewhere]"
    elif fault == "other_table":
        recs[k]["table"] = "s/testcpu/other.h5"
    if fault in ("nan_resealed", "foreign_host", "other_table"):
        recs[k]["sha256"] = _line_sha(recs[k])          # a consistent line that must still be refused
    _rewrite(path, recs)
    if fault == "middle_cut":
        text = path.read_text().splitlines()
        text[k] = text[k][:40]
        path.write_text("\n".join(text) + "\n")
    before = path.read_bytes()
    assert _one_round(out, "0-1") == 2
    err = capsys.readouterr().err
    assert needle in err and f"line {k + 1}" in err and "move it aside" in err
    assert path.read_bytes() == before and not out.exists()     # nothing re-measured, nothing lost


def test_a_last_line_cut_by_a_kill_is_ignored_and_cut_off(tmp_path):
    out = tmp_path / "c.h5"
    assert _one_round(out, "0-1") == 0
    path = journal_path(out, [0, 1])
    whole = _lines(path)
    path.write_bytes(path.read_bytes() + b'{"kind": "visit", "i": 1, "rou')      # killed mid-write
    assert _one_round(out, "0-1") == 0
    t = read_table(out)
    assert len(t) == 2 and t.raw["latency_ms"].shape == (2, 4)      # both rounds' visits
    for v in (r for r in whole if r["kind"] == "visit"):     # the first process's visits are in the rows
        row = t.raw["latency_ms"][t.index.tolist().index(v["i"])]
        assert any(np.allclose(row[j:j + 2], v["raw"]["latency_ms"]) for j in (0, 2))
