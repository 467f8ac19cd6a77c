"""`--optimizer module:Class` finds a module in the current directory, also when the current
directory is not on sys.path (the installed `hwgptbench` console script does not put it there)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("moocore")

import hwgptbench  # noqa: E402
from hwgptbench.moo import get_problem, make_optimizer  # noqa: E402

ROOT = Path(hwgptbench.__file__).resolve().parents[1]

USER_MODULE = textwrap.dedent("""
    import numpy as np
    from hwgptbench.moo import Optimizer

    class Greedy(Optimizer):
        def _ask(self):
            return self.space.sample_features(4, seed=self.rng)

        def _tell(self, X, F):
            pass
""")

# what pip's `hwgptbench` console script holds: sys.path[0] is the script's folder, not the cwd
LAUNCHER = "import sys\nfrom hwgptbench.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n"


def _write(folder: Path, module: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(USER_MODULE)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_runs_an_optimizer_from_the_current_directory(tmp_path, workers):
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    _write(work, "my_greedy_cli")
    bin_dir.mkdir()
    (bin_dir / "hwgptbench").write_text(LAUNCHER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(bin_dir / "hwgptbench"), "run", "--objectives=-params,flops",
                          "--optimizer", "my_greedy_cli:Greedy", "--budget", "8", "--seeds", "2",
                          "--workers", workers, "--no-plots", "--quiet", "--out", "out"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    df = pd.read_csv(work / "out" / "results.csv")
    assert len(df) == 16 and (df["optimizer"] == "my_greedy_cli:Greedy").all()


def test_make_optimizer_looks_in_the_cwd_and_leaves_sys_path_alone(tmp_path, monkeypatch):
    _write(tmp_path, "my_greedy_api")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    before = list(sys.path)
    P = get_problem("s:-params,flops")
    opt = make_optimizer("my_greedy_api:Greedy", P, seed=0)
    assert type(opt).__name__ == "Greedy" and opt.ask().shape == (4, P.space.n_features)
    assert sys.path == before
    for bad in ("no_such_module_here:Opt", "my_greedy_api:Nope", "my_greedy_api:", ":Greedy"):
        with pytest.raises(ValueError, match="module:Class"):
            make_optimizer(bad, P)


def test_sweep_takes_a_user_class_beside_the_baselines(tmp_path, monkeypatch):
    # minimize accepts a class; so does sweep (issue 22), in this process and in spawned workers
    from hwgptbench.moo.runner import sweep
    _write(tmp_path, "user_sweep_opt")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from user_sweep_opt import Greedy
    for workers in (1, 2):
        df = sweep("s:-params,flops", [Greedy, "rs"], 2, 8, workers=workers, progress=False)
        assert df.groupby("optimizer").size().to_dict() == {"Greedy": 16, "rs": 16}
    with pytest.raises(TypeError, match="module:Class"):
        sweep("s:-params,flops", [3], 2, 8)


def test_reproduce_runs_a_user_optimizer_beside_the_baselines_and_ranks_it(tmp_path, monkeypatch, capsys):
    from hwgptbench.cli import main
    _write(tmp_path, "user_repro_opt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert main(["reproduce", "--split", "test", "--problems", "s:-params,memory_MB_analytic",
                 "s:-params,latency_ms@cpu_xeon_2c", "--budget", "12", "--seeds", "2", "--workers", "1",
                 "--optimizer", "user_repro_opt:Greedy", "--out", str(out), "--quiet"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert "user_repro_opt:Greedy" in set(df["optimizer"]) and "rs" in set(df["optimizer"])
    capsys.readouterr()
    assert main(["leaderboard", str(out)]) == 0
    assert "| user_repro_opt:Greedy |" in capsys.readouterr().out
    assert main(["reproduce", "--optimizer", "Greedy", "--out", str(out)]) == 2
    assert "module:Class" in capsys.readouterr().err
