"""Light core and packaging: no torch at import, every subpackage shipped."""
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_does_not_load_torch():
    code = "import sys, hwgptbench, hwgptbench.cost, hwgptbench.tables, hwgptbench.benchmark; " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "hwgptbench").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"


def test_the_wheel_works_outside_the_checkout(tmp_path):
    """Build the wheel, install it (without dependencies: this environment has them) into a folder
    of its own, and use it from a folder outside the checkout: a query, a problem, a run and its
    leaderboard, a refit into a scratch folder, the GPU plan rehearsed and merged into scratch folders,
    the xs pipeline rehearsed. Whatever reads a checkout-only path fails here."""
    import os
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("hwgptbench-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    def hw(*args):
        r = subprocess.run([sys.executable, "-m", "hwgptbench.cli", *args], cwd=work, env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, (args, r.stderr[-2000:])
        return r.stdout

    where = subprocess.run([sys.executable, "-c", "import hwgptbench; print(hwgptbench.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))                      # the installed copy, not the checkout
    assert "latency_ms@h100" in hw("query", "random", "--space", "s", "-n", "2", "--json")
    hw("run", "--space", "s", "--objectives=perplexity_hwgpt,params", "--optimizer", "rs,nsga2", "--budget", "200",
       "--seeds", "2", "--out", "run", "--workers", "1", "--no-plots", "--quiet")
    board = hw("leaderboard", "run")                        # a run folder joins the newest suite
    assert "| nsga2 |" in board and "| rs |" in board and "No results for:" in board
    hw("fit-surrogates", "--data", str(site / "hwgptbench" / "_data"), "--out", "sur", "--spaces", "s")
    assert (work / "sur" / "manifest.json").exists()
    hw("gpu-plan", "--rehearsal", "--out", "lease", "--work-dir", "lease_work")      # the GPU plan, rehearsed ...
    merged = hw("gpu-plan", "merge", "lease", "--allow-rehearsal", "--data-dir", "scratch",   # ... and merged
                "--surrogates-dir", "scratch_sur", "--no-fronts")
    assert "s_rehearsal" in merged or "rehearsal.h5" in merged
    assert any((work / "scratch").rglob("*.h5")) and (work / "scratch_sur" / "manifest.json").exists()
    for stage in ("train", "score", "table"):                # the training stage, rehearsed from the wheel
        hw("xs-pipeline", stage, "--work", "xs", "--rehearsal", "--data-dir", "data")
    assert (work / "data" / "xs" / "perplexity.h5").exists()
