"""Profiling set, HDF5 tables and resumable profiling runs (including a real SIGKILL)."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from hwgptbench import get_space
from hwgptbench.profiling.profiling_set import corners, profiling_set
from hwgptbench.tables import Table, TableError, load_dataframe, read_table, write_table


def test_profiling_set_prefix_stable_unique_and_headed_by_extremes():
    long = profiling_set("s", 2100)
    assert profiling_set("s", 10) == long[:10] and profiling_set("s", 1500) == long[:1500]
    assert len(set(long)) == len(long)
    sp = get_space("s")
    assert long[0] == sp.largest() and long[1] == sp.smallest()
    assert long[:32] == corners("s") and len(corners("s")) == 32
    assert profiling_set("m", 40) != profiling_set("l", 40)


def test_profiling_set_tail_is_uniform_per_gene():
    X = get_space("m").encode(profiling_set("m", 1032)[32:])
    for col in (0, 1, 2, 3):
        counts = np.unique(X[:, col], return_counts=True)[1]
        expected = len(X) / len(counts)
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), col


def _table(n=3):
    archs = profiling_set("s", n)
    rng = np.random.default_rng(0)
    return Table("profile", "s", "testdev", [a.id for a in archs], np.arange(n),
                 {"latency_ms": rng.uniform(1, 2, (n, 4)), "energy_J": np.full((n, 1), np.nan)},
                 {"latency_ms": "ms", "energy_J": "J"}, {"latency_ms": "measured", "energy_J": "measured"},
                 {"device": "testdev"})


def test_table_round_trip_and_dataframe(tmp_path):
    t = _table()
    write_table(t, tmp_path / "t.h5")
    back = read_table(tmp_path / "t.h5")
    assert back.arch_ids == t.arch_ids and back.provenance == t.provenance
    np.testing.assert_array_equal(back.raw["latency_ms"], t.raw["latency_ms"])
    df = load_dataframe(tmp_path / "t.h5", raw=True)
    np.testing.assert_allclose(df["latency_ms"], t.raw["latency_ms"].mean(axis=1))
    np.testing.assert_allclose(df["latency_ms_std"], t.raw["latency_ms"].std(axis=1, ddof=1))
    assert df["energy_J_n"].tolist() == [0, 0, 0] and df["energy_J"].isna().all()
    assert df.attrs["units"]["latency_ms"] == "ms" and "latency_ms[3]" in df


def test_table_validation(tmp_path):
    t = _table()
    t.units["latency_ms"] = "s"
    with pytest.raises(TableError, match="unit"):
        write_table(t, tmp_path / "x.h5")
    t = _table()
    t.raw["latency_ms"][0, 0] = -1
    with pytest.raises(TableError, match=">= 0"):
        write_table(t, tmp_path / "x.h5")
    write_table(_table(), tmp_path / "ok.h5")
    with h5py.File(tmp_path / "ok.h5", "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(TableError, match="schema_version"):
        read_table(tmp_path / "ok.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(TableError, match="HDF5"):
        read_table(tmp_path / "junk.h5")


def test_failed_write_keeps_the_old_table(tmp_path, monkeypatch):
    path = tmp_path / "t.h5"
    write_table(_table(2), path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(OSError):
        write_table(_table(3), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]


torch = pytest.importorskip("torch")
TINY = ["profile", "--space", "s", "--backend", "cpu", "--seq", "8", "--warmup", "0", "--repeats", "2",
        "--threads", "1", "--device", "testcpu", "--quiet"]


def _cli(args):
    from hwgptbench.cli import main
    return main(args)


def test_profile_resumes_and_refuses_foreign_tables(tmp_path, capsys):
    out = str(tmp_path / "p.h5")
    assert _cli(TINY + ["-n", "3", "--table", out]) == 0
    t = read_table(out)
    assert t.arch_ids == [a.id for a in profiling_set("s", 3)]
    assert t.raw["latency_ms"].shape == (3, 2) and t.sources["memory_MB"] == "analytic"
    prov = t.provenance
    assert prov["protocol"]["seq"] == 8 and prov["runs"][0]["command"].startswith("hwgptbench profile")
    assert prov["hardware"]["cpu"]["cpu_count"] >= 1 and "torch" in prov["runs"][0]["versions"]
    assert _cli(TINY + ["-n", "5", "--table", out]) == 0
    t2 = read_table(out)
    assert t2.arch_ids[:3] == t.arch_ids and len(t2) == 5 and len(t2.provenance["runs"]) == 2
    before = open(out, "rb").read()
    other_device = [a if a != "testcpu" else "othercpu" for a in TINY]
    assert _cli(other_device + ["-n", "6", "--table", out]) == 2
    assert _cli([a if a != "8" else "16" for a in TINY] + ["-n", "6", "--table", out]) == 2
    assert "nothing was overwritten" in capsys.readouterr().err
    assert open(out, "rb").read() == before


@pytest.mark.parametrize("args,field", [(["--seq", "2048"], "seq"), (["--batch", "0"], "batch"),
                                        (["--repeats", "0"], "repeats"), (["--device", "a/b"], "device"),
                                        (["--indices", "x-3"], "indices")])
def test_profile_bad_input(tmp_path, capsys, args, field):
    assert _cli(TINY + ["-n", "1", "--table", str(tmp_path / "p.h5")] + args) == 2
    assert field in capsys.readouterr().err
    assert not (tmp_path / "p.h5").exists()


def test_killed_run_resumes_to_exactly_the_same_rows(tmp_path):
    """SIGKILL a real profiling subprocess mid-run, resume it, and check the table."""
    out = tmp_path / "k.h5"
    n = 12
    cmd = [sys.executable, "-m", "hwgptbench.cli"] + TINY + ["-n", str(n), "--table", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    rows = 0
    while time.time() < deadline and proc.poll() is None:
        if out.exists():
            try:
                rows = len(read_table(out))
            except (TableError, OSError):
                pass
        if rows >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = read_table(out)                       # readable, not corrupt
    assert 3 <= len(killed) < n
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    final = read_table(out)
    assert final.arch_ids == [a.id for a in profiling_set("s", n)]
    assert sorted(final.index.tolist()) == list(range(n))
    assert final.arch_ids[:len(killed)] == killed.arch_ids
    np.testing.assert_array_equal(final.raw["latency_ms"][:len(killed)], killed.raw["latency_ms"])
    assert json.dumps(final.provenance)  # provenance still valid JSON


def test_merge_adds_missing_rows_only_and_refuses_foreign_tables():
    from hwgptbench.tables import merge_tables
    a, b = _table(3), _table(5)
    b.raw["latency_ms"][:3] += 100           # overlapping rows: the base's values must be kept
    b.provenance = {"device": "testdev", "runs": [{"started": "x"}]}
    m = merge_tables(a, b)
    assert m.arch_ids == b.arch_ids and len(m) == 5
    np.testing.assert_array_equal(m.raw["latency_ms"][:3], a.raw["latency_ms"])
    np.testing.assert_array_equal(m.raw["latency_ms"][3:], b.raw["latency_ms"][3:])
    assert m.provenance["runs"] == [{"started": "x"}]
    c = _table(2)
    c.source = "otherdev"
    with pytest.raises(TableError, match="source"):
        merge_tables(a, c)
    d = _table(2)
    d.provenance["protocol_key"] = {"batch": 8}
    with pytest.raises(TableError, match="protocol"):
        merge_tables(a, d)


def test_second_writer_of_a_table_is_refused_and_loses_nothing(tmp_path):
    """Two profilers on one table: the second stops at once with a clear error; no row is lost."""
    out = tmp_path / "two.h5"
    cmd = [sys.executable, "-m", "hwgptbench.cli"] + TINY + ["-n", "60", "--table", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not out.exists():
        time.sleep(0.05)
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert first.poll() is None, "the first profiler finished before the second started; make it longer"
    assert first.wait() == 0
    assert second.returncode == 2 and "being written by another process" in second.stderr
    assert "Traceback" not in second.stderr
    final = read_table(out)
    assert final.arch_ids == [a.id for a in profiling_set("s", 60)]
    assert not list(tmp_path.glob("*.partial"))


def test_n_zero_writes_nothing_and_says_so(tmp_path, capsys):
    assert _cli(TINY + ["-n", "0", "--table", str(tmp_path / "z.h5")]) == 0
    assert "nothing measured" in capsys.readouterr().out and not (tmp_path / "z.h5").exists()
