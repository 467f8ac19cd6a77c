"""Integrity on load of every file we ship or write, and a fault test for each write path: a
failure injected mid-write (monkeypatched to raise) must leave the old files intact and loadable.
Real faults only: bytes edited on disk, a manifest edited consistently (checksum recomputed), a
symlink out of the folder, NaN written into an array."""
import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from surrogate_fixtures import make_data_dir, make_table

from hwgptbench import files, get_space
from hwgptbench.benchmark import Benchmark
from hwgptbench.surrogates import SurrogateError, fit_all
from hwgptbench.surrogates import store as st
from hwgptbench.surrogates.serve import StaleSurrogateWarning, SurrogateStore
from hwgptbench.tables import write_table

pytest.importorskip("xgboost")
COL = "latency_ms@testdev"
QUIET = {"log": lambda *a: None}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    data = make_data_dir(root / "data", {"s": 60})
    fit_all(data, root / "surrogates", **QUIET)
    return data, root / "surrogates"


def _copy(src, tmp_path):
    dst = tmp_path / "surr"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _edit_manifest(folder, change):
    """Edit the manifest and recompute its checksum: a consistent edit, not damage."""
    m = json.loads((folder / st.MANIFEST).read_text())
    change(m)
    st.write_manifest(folder, {k: v for k, v in m.items() if k != "manifest_sha256"})


def _predict(folder):
    X = get_space("s").sample_features(50, seed=1)
    return Benchmark("s", surrogates=folder).evaluate(X, [COL])


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- the manifest ---------------------------------------------------------------------------------
def test_edited_manifest_fails_its_own_checksum(fitted, tmp_path):
    folder = _copy(fitted[1], tmp_path)
    text = (folder / st.MANIFEST).read_text().replace('"device": "testdev"', '"device": "h100"')
    (folder / st.MANIFEST).write_text(text)
    with pytest.raises(SurrogateError, match="manifest.json: manifest_sha256 .* does not match"):
        Benchmark("s", surrogates=folder).columns()


@pytest.mark.parametrize("field,value,why", [
    ("column", "latency_ms@h100", "column 'latency_ms@h100' does not match"),
    ("device", "h100", "device 'h100'"),
    ("space", "m", "key does not match"),
    ("table", "s/other.h5", "table 's/other.h5' is not s/testdev.h5"),
    ("kind", "perplexity", "kind 'perplexity'"),
])
def test_manifest_metadata_must_agree(fitted, tmp_path, field, value, why):
    """An edited manifest (checksum recomputed) cannot serve the model under another column."""
    folder = _copy(fitted[1], tmp_path)
    _edit_manifest(folder, lambda m: m["surrogates"]["s/testdev/latency_ms"].__setitem__(field, value))
    with pytest.raises(SurrogateError, match=f"s/testdev/latency_ms.*{why}"):
        Benchmark("s", surrogates=folder).columns()


@pytest.mark.parametrize("path", ["../outside.ubj", "/etc/passwd", "s/testdev/latency_ms.ubj"])
def test_file_paths_are_confined_and_named_by_their_surrogate(fitted, tmp_path, path):
    folder = _copy(fitted[1], tmp_path)
    _edit_manifest(folder, lambda m: m["surrogates"]["s/testdev/latency_ms"]["files"]["ubj"].__setitem__("path", path))
    with pytest.raises(SurrogateError, match="files.ubj: path .* is not 's/testdev/latency_ms"):
        Benchmark("s", surrogates=folder).columns()


def test_symlink_out_of_the_folder_is_refused(fitted, tmp_path):
    folder = _copy(fitted[1], tmp_path)
    entry = json.loads((folder / st.MANIFEST).read_text())["surrogates"]["s/testdev/latency_ms"]
    inside = folder / entry["files"]["ubj"]["path"]
    outside = tmp_path / "elsewhere.ubj"
    outside.write_bytes(inside.read_bytes())             # same bytes: only the location is wrong
    inside.unlink()
    inside.symlink_to(outside)
    with pytest.raises(SurrogateError, match="outside"):
        _predict(folder)


def test_nan_in_interval_arrays_is_refused(fitted, tmp_path):
    folder = _copy(fitted[1], tmp_path)
    entry = json.loads((folder / st.MANIFEST).read_text())["surrogates"]["s/testdev/latency_ms"]
    with np.load(folder / entry["files"]["npz"]["path"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["interval"][2] = np.nan
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    new = st.write_model_files(folder, "s/testdev/latency_ms", {".npz": buf.getvalue()})["npz"]
    _edit_manifest(folder, lambda m: m["surrogates"]["s/testdev/latency_ms"]["files"].__setitem__("npz", new))
    with pytest.raises(SurrogateError, match=r"latency_ms\.[0-9a-f]{12}\.npz.*NaN or inf"):
        _predict(folder)


@pytest.mark.parametrize("content", [b"\x00garbage", b"{}", b'{"schema_version": 1, "surrogates": []}'])
def test_corrupt_manifest_is_one_clear_error(tmp_path, content):
    (tmp_path / st.MANIFEST).write_bytes(content)
    with pytest.raises(SurrogateError, match="manifest.json: "):
        Benchmark("s", surrogates=tmp_path).columns()


def test_stale_surrogate_is_warned_naming_both_files(fitted, tmp_path):
    data, folder = fitted
    data2 = tmp_path / "data"
    shutil.copytree(data, data2)
    store = SurrogateStore(folder, data=data2)
    store.get("s", COL)                                     # same table: no warning
    write_table(make_table("s", 61, seed=100), data2 / "s" / "testdev.h5")    # one row more
    with pytest.warns(StaleSurrogateWarning, match=r"manifest.json.*s/testdev.h5"):
        SurrogateStore(folder, data=data2).get("s", COL)


# ---- fit_all: never destroys the shipped folder -------------------------------------------------------
@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_fit_all_refuses_a_bad_data_folder_before_touching_anything(fitted, tmp_path, kind):
    folder = _copy(fitted[1], tmp_path)
    before = _snapshot(folder)
    data = tmp_path / "data"
    if kind == "file":
        data.write_text("x")
    elif kind == "empty":
        (data / "s").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="data: .*(does not exist|is a file|holds no table)"):
        fit_all(data, folder, **QUIET)
    assert _snapshot(folder) == before


@pytest.mark.parametrize("fail_at", ["model file", "manifest"])
def test_fit_failure_leaves_a_loadable_folder(fitted, tmp_path, monkeypatch, fail_at):
    data, src = fitted
    folder = _copy(src, tmp_path)
    expected = _predict(folder)
    data2 = tmp_path / "data"
    shutil.copytree(data, data2)
    write_table(make_table("s", 70, seed=7), data2 / "s" / "testdev.h5")   # a refit changes the files
    calls = {"n": 0}
    real = files.write_bytes

    def flaky(path, blob, *a, **k):
        calls["n"] += 1
        if (fail_at == "manifest") == path.name.endswith(".json") and calls["n"] >= 2:
            raise OSError("disk full (injected)")
        return real(path, blob, *a, **k)

    monkeypatch.setattr(files, "write_bytes", flaky)
    with pytest.raises(OSError, match="injected"):
        fit_all(data2, folder, **QUIET)
    monkeypatch.undo()
    assert np.array_equal(_predict(folder), expected)       # the old surrogates, whole
    assert not list(folder.rglob("*.partial"))
    fit_all(data2, folder, **QUIET)                           # and a retry succeeds, removing stale files
    listed = {f["path"] for e in st.read_manifest(folder)["surrogates"].values() for f in e["files"].values()}
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*.*") if p.suffix in (".ubj", ".npz")} == listed


# ---- problems.json, fronts, suites.json, state.json ------------------------------------------------------
def test_registry_values_are_checked(tmp_path, monkeypatch):
    from hwgptbench.moo import problem as pm

    reg = json.loads(pm.REGISTRY.read_text())
    name = "s:-params,flops"
    reg["problems"][name]["upper"][1] = float("nan")
    path = tmp_path / "problems.json"
    path.write_text(json.dumps(reg))
    monkeypatch.setattr(pm, "REGISTRY", path)
    with pytest.raises(ValueError, match=r"problems.json: problem 's:-params,flops': lower/upper must be 2 finite"):
        pm.get_problem(name).lower
    reg["problems"][name]["upper"][1] = 1e12
    reg["problems"][name]["front_file"] = "../../../etc/passwd"
    path.write_text(json.dumps(reg))
    with pytest.raises(ValueError, match="front_file must be a .npz file name inside fronts/"):
        pm.shipped_problems()
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(ValueError, match="problems.json: not valid JSON"):
        pm.shipped_problems()


def test_front_with_nan_is_refused(tmp_path, monkeypatch):
    from hwgptbench.moo import problem as pm

    reg = json.loads(pm.REGISTRY.read_text())
    e = reg["problems"]["s:-params,flops"]
    with np.load(pm.FRONTS_DIR / e["front_file"], allow_pickle=False) as z:
        F, X = z["F"].copy(), z["X"]
    F[0, 0] = np.nan
    (tmp_path / "fronts").mkdir()
    np.savez_compressed(tmp_path / "fronts" / e["front_file"], F=F, X=X)
    e["front_sha256"] = hashlib.sha256((tmp_path / "fronts" / e["front_file"]).read_bytes()).hexdigest()
    (tmp_path / "problems.json").write_text(json.dumps(reg))
    monkeypatch.setattr(pm, "REGISTRY", tmp_path / "problems.json")
    monkeypatch.setattr(pm, "FRONTS_DIR", tmp_path / "fronts")
    with pytest.raises(ValueError, match=r"reference front s_negparams__flops.*finite"):
        pm.get_problem("s:-params,flops").reference_front


def test_corrupt_suites_file_is_one_clear_error(tmp_path, monkeypatch):
    from hwgptbench.moo import suite

    path = tmp_path / "suites.json"
    path.write_text('{"schema": 1, "suites": ')
    monkeypatch.setattr(suite, "SUITES_FILE", path)
    with pytest.raises(ValueError, match="suites.json: not valid JSON"):
        suite.get_suite()


@pytest.mark.parametrize("content", [b"{", b"[1, 2]", b'{"version": 1, "stages": []}'])
def test_corrupt_plan_state_is_one_clear_error(tmp_path, content):
    from hwgptbench.gpu_plan.state import PlanState

    (tmp_path / "state.json").write_bytes(content)
    with pytest.raises(ValueError, match=r"work_dir: .*state.json.*(not valid JSON|not a plan state)"):
        PlanState.load(tmp_path, {})


# ---- other write paths: a failure mid-write keeps the old file --------------------------------------------
def _fail_mid_write(monkeypatch):
    """os.replace raises: the new content was written in full to a temporary file, never renamed."""
    import os
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("killed (injected)")))


def test_plan_state_save_is_atomic(tmp_path, monkeypatch):
    from hwgptbench.gpu_plan.state import PlanState

    s = PlanState.load(tmp_path, {"a": 1})
    s.save()
    before = (tmp_path / "state.json").read_bytes()
    s.stage("preflight")["status"] = "done"
    _fail_mid_write(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        s.save()
    monkeypatch.undo()
    assert (tmp_path / "state.json").read_bytes() == before and not list(tmp_path.glob("*.partial"))
    assert PlanState.load(tmp_path, {"a": 1}).stage("preflight")["status"] == "pending"


def test_sweep_results_write_is_atomic(tmp_path, monkeypatch):
    import pandas as pd

    from hwgptbench.moo.runner import write_results

    path = write_results(pd.DataFrame({"a": [1, 2]}), tmp_path / "r.csv")
    before = path.read_bytes()
    _fail_mid_write(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        write_results(pd.DataFrame({"a": [3]}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and not list(tmp_path.glob("*.partial"))


def test_supernet_state_write_is_atomic(tmp_path, monkeypatch):
    from hwgptbench.training import supernet

    path = tmp_path / "state.json"
    supernet._atomic_json({"step": 1}, path)
    _fail_mid_write(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        supernet._atomic_json({"step": 2}, path)
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"step": 1} and not list(tmp_path.glob("*.partial"))


def test_make_suite_write_is_atomic(tmp_path, monkeypatch):
    import importlib.util

    from hwgptbench.moo import suite

    spec = importlib.util.spec_from_file_location("make_suite", suite.Path(__file__).parents[1] / "scripts/make_suite.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = tmp_path / "suites.json"
    shutil.copy(suite.SUITES_FILE, path)
    before = path.read_bytes()
    monkeypatch.setattr(suite, "SUITES_FILE", path)
    monkeypatch.setattr(mod, "SUITES_FILE", path)
    _fail_mid_write(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        mod.main(["hwgptbench-suite/test-only"])
    monkeypatch.undo()
    assert path.read_bytes() == before and not list(tmp_path.glob("*.partial"))


def test_make_reference_fronts_writes_the_registry_last(tmp_path, monkeypatch):
    """A run killed before its registry is written leaves the old registry, every front it lists
    intact; a finished run lists only fronts that exist and removes the ones it replaced."""
    from hwgptbench.moo import problem as pm
    from hwgptbench.moo import reference_fronts as mod

    shutil.copytree(pm.FRONTS_DIR, tmp_path / "fronts")
    shutil.copy(pm.REGISTRY, tmp_path / "problems.json")
    monkeypatch.setattr(pm, "REGISTRY", tmp_path / "problems.json")
    monkeypatch.setattr(pm, "FRONTS_DIR", tmp_path / "fronts")
    monkeypatch.setattr(mod, "_features_of_run", lambda P, *a: P.space.sample_features(20, seed=a[-1]))
    before = (tmp_path / "problems.json").read_bytes()
    real = mod.write_bytes
    monkeypatch.setattr(mod, "write_bytes", lambda p, b: (_ for _ in ()).throw(OSError("killed (injected)"))
                        if p.name == "problems.json" else real(p, b))
    args = dict(problems=["s:-params,flops"], random=200, budget=10, seeds=1, log=lambda *a: None)
    with pytest.raises(OSError, match="injected"):
        mod.make_reference_fronts(**args)
    assert (tmp_path / "problems.json").read_bytes() == before
    assert pm.get_problem("s:-params,flops").reference_front.shape[1] == 2     # old front, verified
    monkeypatch.setattr(mod, "write_bytes", real)
    mod.make_reference_fronts(**args)
    listed = {e["front_file"] for e in json.loads((tmp_path / "problems.json").read_text())["problems"].values()}
    assert {p.name for p in (tmp_path / "fronts").glob("*.npz")} == listed
    assert pm.get_problem("s:-params,flops").reference_front.shape[1] == 2     # new front, verified
