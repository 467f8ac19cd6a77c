"""Reference measurements of another profiler: imported unchanged, labelled, never duplicated."""
import json
from pathlib import Path

import numpy as np
import pytest

from hwgptbench import Benchmark, get_space
from hwgptbench.cli import main
from hwgptbench.profiling.reference import import_reference
from hwgptbench.tables import NO_INDEX, TableError, load_dataframe, read_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference_data" / "h100_2026-11-22.json"
MEASURED = "2026-11-22, one lent machine: NVIDIA H100 80GB HBM3, 580.159.04, 700.00 W, 1980 MHz; torch 2.11.0+cu130"
PROTOCOL = "bf16, batch 8 x 1024 tokens; 5 warm-up then 10 timed forwards"


def _doc(rows, measured=MEASURED):
    return {"what": "test", "measured": measured, "protocol": PROTOCOL, "model": "m", "caveats": "c",
            "rows": rows, "position": "p"}


def _rows(space, n, seed):
    rng = np.random.default_rng(seed)
    return [{"id": a.id, "position": i, "latency_ms": rng.uniform(4, 9, 10).round(4).tolist(),
             "energy_J": rng.uniform(1, 3, 3).round(4).tolist(), "memory_MB": round(float(rng.uniform(800, 900)), 3)}
            for i, a in enumerate(get_space(space).sample(n, seed=seed))]


def test_values_enter_unchanged_and_are_labelled(tmp_path):
    s_rows = _rows("s", 8, 1)
    rows = s_rows[:6] + _rows("m", 3, 2)
    f = tmp_path / "ref.json"
    f.write_text(json.dumps(_doc(rows)))
    out = import_reference(f, tmp_path / "data", log=lambda m: None)
    assert {Path(k).parent.name: v["added"] for k, v in out.items()} == {"s": 6, "m": 3}
    t = read_table(tmp_path / "data" / "s" / "h100.h5")
    assert (t.index == NO_INDEX).all() and t.source == "h100"
    for r, row in enumerate(rows[:6]):                       # the file's numbers, exactly
        assert t.arch_ids[r] == row["id"] and t.extra["position"][r] == row["position"]
        assert t.raw["latency_ms"][r].tolist() == row["latency_ms"]
        assert t.raw["energy_J"][r].tolist() == row["energy_J"]
        assert t.raw["memory_MB"][r, 0] == row["memory_MB"]
    p = t.provenance
    assert p["third_party"] and "independent profiler" in p["measured_by"] and p["reference"]["caveats"] == "c"
    assert p["hardware"]["identity"] == {"gpu_name": "NVIDIA H100 80GB HBM3"}
    # again: nothing duplicated; more rows of the same GPU and protocol extend the table
    assert all(v["added"] == 0 for v in import_reference(f, tmp_path / "data", log=lambda m: None).values())
    f.write_text(json.dumps(_doc(s_rows)))                     # 6 known + 2 new
    assert import_reference(f, tmp_path / "data", log=lambda m: None)[str(tmp_path / "data" / "s" / "h100.h5")] == \
        {"added": 2, "rows": 8}


def test_bad_files_are_refused_before_anything_is_written(tmp_path):
    data = tmp_path / "data"
    cases = [
        (_doc(_rows("s", 2, 3) + [{"id": "gpt-s-99-192-True", "position": 9, "latency_ms": [1.0],
                                   "energy_J": [1.0], "memory_MB": 1.0}]), r"rows\[2\]: id"),
        (_doc([{**_rows("s", 1, 4)[0], "latency_ms": [1.0, float("nan")]}]), "latency_ms: expected finite"),
        (_doc([{k: v for k, v in _rows("s", 1, 5)[0].items() if k != "position"}]), "lacks 'position'"),
        (_doc(_rows("s", 1, 6), measured="yesterday on a GPU"), "measured"),
        ({"rows": []}, "lacks"),
    ]
    for doc, message in cases:
        f = tmp_path / "bad.json"
        f.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=message):
            import_reference(f, data, log=lambda m: None)
        assert not data.exists()
    # another GPU under the same device name is refused
    f = tmp_path / "ok.json"
    f.write_text(json.dumps(_doc(_rows("s", 2, 7))))
    import_reference(f, data, log=lambda m: None)
    f.write_text(json.dumps(_doc(_rows("s", 2, 8), measured=MEASURED.replace("80GB HBM3", "PCIe"))))
    with pytest.raises(TableError, match="hardware"):
        import_reference(f, data, log=lambda m: None)
    assert len(read_table(data / "s" / "h100.h5")) == 2


def test_cli_import_reference(tmp_path, capsys):
    f = tmp_path / "ref.json"
    f.write_text(json.dumps(_doc(_rows("l", 2, 9))))
    assert main(["import-reference", str(f), "--data-dir", str(tmp_path / "d")]) == 0
    assert '"added": 2' in capsys.readouterr().out
    runs = read_table(tmp_path / "d" / "l" / "h100.h5").provenance["runs"]
    assert runs[0]["command"].startswith("hwgptbench import-reference")


@pytest.mark.skipif(not SHARED.exists(), reason="shared/reference_data is not beside this checkout")
def test_shipped_h100_tables_are_the_shared_file_unchanged():
    doc = json.loads(SHARED.read_text())
    want = {r["id"]: r for r in doc["rows"]}
    for space, n in doc["rows_per_space"].items():
        df = load_dataframe(Path(__file__).resolve().parents[1] / "data" / space / "h100.h5", raw=True)
        assert len(df) == n
        for aid, row in df.iterrows():
            assert [row[f"latency_ms[{j}]"] for j in range(10)] == want[aid]["latency_ms"]
            assert row["memory_MB[0]"] == want[aid]["memory_MB"]


def test_h100_columns_are_served_with_their_source():
    b = Benchmark("l")
    meta = b.metrics()
    for c in ("latency_ms@h100", "energy_J@h100", "memory_MB@h100"):
        assert c in b.columns() and meta[c]["kind"] == "measured" and "l/h100.h5" in meta[c]["source"]
    v = b.query(get_space("l").sample(3, seed=0), metrics=["latency_ms@h100"], interval=True)
    assert (v["latency_ms@h100:lo90"] <= v["latency_ms@h100"]).all()
