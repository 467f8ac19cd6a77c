"""Table files: a damaged or edited file is one clear error, never a silently different number;
values and ids are validated; writers are exclusive; temporary files never pile up."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from hwgptbench import get_space
from hwgptbench.files import LockedError, WriterLock, check_writable, remove_partials
from hwgptbench.profiling.profiling_set import profiling_set
from hwgptbench.tables import Table, TableError, read_table, upgrade_table, write_table


def _table(n=6, seed=0):
    archs = profiling_set("s", n)
    rng = np.random.default_rng(seed)
    return Table("profile", "s", "testdev", [a.id for a in archs], np.arange(n),
                 {"latency_ms": rng.uniform(100, 300, (n, 5))}, {"latency_ms": "ms"},
                 {"latency_ms": "measured"}, {"device": "testdev", "runs": [{"command": "test"}]},
                 {"measured_at": rng.uniform(0, 1e9, n)})


def _same(a: Table, b: Table) -> bool:
    return (a.arch_ids == b.arch_ids and np.array_equal(a.index, b.index) and a.provenance == b.provenance
            and a.units == b.units and a.sources == b.sources
            and all(np.array_equal(a.raw[m], b.raw[m], equal_nan=True) for m in a.raw)
            and all(np.array_equal(a.extra[m], b.extra[m]) for m in a.extra))


def test_single_bit_flips_never_give_a_silently_different_table(tmp_path):
    path = tmp_path / "t.h5"
    original = _table()
    write_table(original, path)
    blob = bytearray(path.read_bytes())
    rng = np.random.default_rng(20261123)
    changed, errors = 0, 0
    for k in range(120):
        bit = int(rng.integers(len(blob) * 8))
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        p = tmp_path / f"flip{k}.h5"
        p.write_bytes(flipped)
        try:
            back = read_table(p)
        except TableError as e:
            assert str(p) in str(e)                     # the error names the file
            errors += 1
            continue
        assert _same(back, original), f"bit {bit}: read a different table without an error"
        changed += 1
    assert errors > 0 and errors + changed == 120


def _write_unchecked(path, t: Table, **edit):
    """A file a tool other than write_table made: arbitrary values, a matching checksum."""
    write_table(t, path)
    with h5py.File(path, "a") as f:
        for key, value in edit.items():
            del f[key]
            f[key] = value
        t2 = Table(t.kind, t.space, t.source, [s.decode() for s in f["arch_id"][()]], f["index"][()],
                   {m: f[f"raw/{m}"][()] for m in f["raw"]}, t.units, t.sources, t.provenance,
                   {m: f[f"extra/{m}"][()] for m in f["extra"]})
        f.attrs["content_sha256"] = t2.content_sha256()
        for m, a in t2.summary().items():
            del f[f"summary/{m}"]
            f[f"summary/{m}"] = a


@pytest.mark.parametrize("edit,message", [
    ("inf", "finite"), ("negative_index", "index"), ("swapped", "position"), ("garbage_id", "arch"),
    ("duplicate_index", "twice")])
def test_bad_values_and_ids_are_refused_even_with_a_matching_checksum(tmp_path, edit, message):
    t = _table()
    raw = t.raw["latency_ms"].copy()
    ids = np.array(t.arch_ids, dtype=object)
    index = t.index.copy()
    if edit == "inf":
        raw[2, 3] = np.inf
        changes = {"raw/latency_ms": raw}
    elif edit == "negative_index":
        index[0] = -2                                   # -1 is NO_INDEX (an id-only row); -2 is nothing
        changes = {"index": index}
    elif edit == "swapped":
        ids[[1, 2]] = ids[[2, 1]]
        changes = {"arch_id": ids.astype(h5py.string_dtype("utf-8"))}
    elif edit == "garbage_id":
        ids[3] = "gpt-s-99-192-True"
        changes = {"arch_id": ids.astype(h5py.string_dtype("utf-8"))}
    else:
        index[4] = index[5]
        changes = {"index": index}
    path = tmp_path / "bad.h5"
    _write_unchecked(path, t, **changes)
    with pytest.raises(TableError, match=message) as e:
        read_table(path)
    assert str(path) in str(e.value)


def test_edited_value_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "t.h5"
    write_table(_table(), path)
    with h5py.File(path, "a") as f:
        f["raw/latency_ms"][0, 0] = 251.22           # a plausible, wrong number
    with pytest.raises(TableError, match="sha256"):
        read_table(path)


def test_schema_1_tables_are_refused_until_upgraded(tmp_path):
    path = tmp_path / "old.h5"
    write_table(_table(), path)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 1
        del f.attrs["content_sha256"]
    with pytest.raises(TableError, match="upgrade"):
        read_table(path)
    assert _same(upgrade_table(path), _table())


def test_one_writer_per_table_and_no_leftovers(tmp_path):
    path = tmp_path / "t.h5"
    with WriterLock(path):
        with pytest.raises(LockedError, match="another process"):
            WriterLock(path).acquire()
        code = f"from hwgptbench.files import WriterLock; WriterLock({str(path)!r}).acquire()"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert other.returncode != 0 and "being written by another process" in other.stderr
    WriterLock(path).acquire().release()                  # free again
    (tmp_path / "t.h5.abc123.partial").write_bytes(b"half")
    assert [p.name for p in remove_partials(path)] == ["t.h5.abc123.partial"]
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(PermissionError, match="cannot write"):
            check_writable(ro / "t.h5")
    finally:
        os.chmod(ro, 0o700)


def test_an_extra_column_new_to_a_table_is_missing_for_older_rows_and_keeps_its_type(tmp_path):
    """A column first recorded by a later run (e.g. `processes`) must read as missing (NaN) for the
    rows measured before, never as a made-up 0; a table that starts with it keeps its dtype (an int
    count stays an int on disk)."""
    archs = profiling_set("s", 3)
    t = Table("profile", "s", "testdev", [], np.zeros(0, np.int64), {}, {"latency_ms": "ms"},
              {"latency_ms": "measured"}, {"device": "testdev", "runs": [{"command": "test"}]})
    t.append(archs[0].id, 0, {"latency_ms": [100.0]}, {"energy_forwards": 7})
    assert t.extra["energy_forwards"].dtype == np.int64 and t.extra["energy_forwards"].tolist() == [7]
    t.append(archs[1].id, 1, {"latency_ms": [110.0]}, {"energy_forwards": 8, "processes": 3.0})
    assert np.isnan(t.extra["processes"][0]) and t.extra["processes"][1] == 3.0
    write_table(t, tmp_path / "t.h5")
    back = read_table(tmp_path / "t.h5")
    assert back.extra["energy_forwards"].dtype == np.int64 and np.isnan(back.extra["processes"][0])


def test_rows_outside_the_profiling_set_are_identified_by_a_valid_id(tmp_path):
    from hwgptbench.tables import NO_INDEX
    t = _table()
    sp = get_space("s")
    outside = sp.sample(3, seed=99)                     # random architectures, not profiling-set entries
    for a in outside:
        t.append(a.id, NO_INDEX, {"latency_ms": np.full(5, 200.0)}, {"measured_at": 1.0})
    path = tmp_path / "ok.h5"
    write_table(t, path)
    back = read_table(path)
    assert back.arch_ids[-3:] == [a.id for a in outside] and (back.index[-3:] == NO_INDEX).all()
    ids = np.array(t.arch_ids, dtype=object)
    m_id = get_space("m").sample(1, seed=0)[0].id
    for bad, message in ((m_id, "not an architecture of space 's'"), ("gpt-s-99-192-True", "not an architecture id"),
                         (outside[0].id.replace("-True", "-true").replace("-False", "-false"), "arch")):
        edited = ids.copy()
        edited[-1] = bad
        p = tmp_path / "bad.h5"
        _write_unchecked(p, t, arch_id=edited.astype(h5py.string_dtype("utf-8")))
        with pytest.raises(TableError, match=message):
            read_table(p)


def test_withdrawn_rows_stay_in_the_file_and_are_not_served(tmp_path):
    from hwgptbench import Benchmark
    from hwgptbench.tables import withdrawn_rows
    t = _table()
    at = t.extra["measured_at"]
    cut = float(np.sort(at)[len(at) // 2])
    t.provenance["withdrawn"] = [{"metric": "latency_ms", "until_measured_at": cut, "reason": "a flaw"}]
    write_table(t, tmp_path / "t.h5")
    back = read_table(tmp_path / "t.h5")
    mask, why = withdrawn_rows(back)["latency_ms"]
    assert why == "a flaw" and np.array_equal(mask, at <= cut) and 0 < mask.sum() < len(at)
    assert np.array_equal(back.raw["latency_ms"], t.raw["latency_ms"])      # the values are kept
    # the shipped h200 memory rows (a profiler flaw found after they were measured) are not served
    b = Benchmark("s")
    assert "memory_MB@h200" not in b.columns() and "latency_ms@h200" in b.columns()
    reasons = {u["column"]: u["reason"] for u in b._store.unavailable("s")}
    assert reasons["memory_MB@h200"].startswith("all 534 rows withdrawn")


def test_provenance_with_integer_keys_reads_back_as_written(tmp_path):
    """JSON turns int keys into strings, which sort differently (64 < 128 but "128" < "64"): the
    checksum is of the provenance as the file holds it, so such a table reads back (xs's noise
    report is keyed by embedding widths 64, 128, 256)."""
    t = _table()
    t.provenance["noise"] = {64: {"n": 1}, 128: {"n": 2}, 256: {"n": 3}}
    write_table(t, tmp_path / "t.h5")
    back = read_table(tmp_path / "t.h5")
    assert back.provenance["noise"] == {"64": {"n": 1}, "128": {"n": 2}, "256": {"n": 3}}
    assert back.content_sha256() == t.content_sha256()
