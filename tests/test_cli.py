"""The command line as a user meets it: help and defaults on every option, --version, light --help,
and a user's mistakes as one error line with exit code 2 (never a traceback)."""
import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from hwgptbench.cli import COMMANDS, build_parser, main
from hwgptbench.cli.options import HelpFormatter, user_error

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _subparsers(parser):
    """(prog, parser) of a parser and of every subcommand below it, walking argparse's own tree."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


def _gpu_plan_parser():
    """The parser of `python -m hwgptbench.gpu_plan`, caught as main builds it."""
    from hwgptbench.cli import gpu_plan
    seen = []
    real = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        seen.append(self)
        raise SystemExit(0)
    argparse.ArgumentParser.parse_args = grab
    try:
        gpu_plan.main([])
    finally:
        argparse.ArgumentParser.parse_args = real
    return seen[0]


def test_every_command_is_built_and_every_option_has_help_and_shows_its_default():
    parsers = dict(_subparsers(build_parser()))
    assert {p.split()[-1] for p in parsers if p != "hwgptbench"} == set(COMMANDS)
    parsers["python -m hwgptbench.gpu_plan"] = _gpu_plan_parser()
    checked = 0
    for prog, parser in parsers.items():
        fmt = HelpFormatter(prog)
        for a in parser._actions:
            if a.help == argparse.SUPPRESS or isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert a.help, f"{prog} {a.option_strings or a.dest}: no help"
            shown = fmt._get_help_string(a) % {**vars(a), "prog": prog}
            takes_value = a.nargs != 0 and not a.required and (a.option_strings or a.nargs in ("?", "*"))
            if takes_value and not isinstance(a, argparse._VersionAction):
                assert "default" in shown.lower(), f"{prog} {a.option_strings or a.dest}: no default in {shown!r}"
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_of_every_command(command, capsys):
    assert main(([command] if command else []) + ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hwgptbench") and (command is None or "(default:" in out)


def test_version_is_the_package_version(capsys):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hwgptbench {version}"


HEAVY = ("torch", "pandas", "xgboost", "matplotlib", "scipy", "sklearn", "pymoo", "optuna", "ray")
PROBE = """
import json, sys
from hwgptbench.cli import main
rc = main(sys.argv[1:])
sys.stdout.flush()
print(json.dumps([rc, sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m.startswith("hwgptbench."))]),
      file=sys.stderr)
"""


def _imports(argvs):
    """Modules imported by `hwgptbench ARGV` in fresh processes (run side by side)."""
    code = PROBE.replace("{heavy}", repr(set(HEAVY)))
    procs = [subprocess.Popen([sys.executable, "-c", code, *argv], env=ENV, cwd=ROOT, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for argv in argvs]
    out = []
    for p in procs:
        err = p.communicate(timeout=120)[1]
        rc, mods = json.loads(err.strip().splitlines()[-1])
        out.append((rc, set(mods)))
    return out


def test_help_imports_no_heavy_library_and_a_command_only_its_own_group():
    argvs = [["--help"], ["query", "--help"], ["profile", "--help"], ["train", "--help"], ["run", "--help"],
             ["sample", "-n", "2"]]
    results = _imports(argvs)
    for argv, (rc, mods) in zip(argvs, results):
        assert rc == 0, argv
        assert not mods & set(HEAVY), (argv, mods & set(HEAVY))
    top = results[0][1]
    assert not any(m.startswith("hwgptbench.cli.") and m != "hwgptbench.cli.options" for m in top), top
    groups = {m for m in results[-1][1] if m.startswith(("hwgptbench.cli.", "hwgptbench.moo",
                                                          "hwgptbench.profiling", "hwgptbench.gpu_plan"))}
    assert groups == {"hwgptbench.cli.options", "hwgptbench.cli.arch"}, groups


def test_gpu_plan_module_runs_without_the_fit_and_moo_libraries():
    code = ("import sys, runpy\nfor m in ('xgboost', 'scipy', 'sklearn', 'matplotlib', 'pymoo'):\n"
            "    sys.modules[m] = None\nsys.argv = ['x', '--help']\nrunpy.run_module('hwgptbench.gpu_plan', "
            "run_name='__main__')\n")
    p = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "--lease-left" in p.stdout, p.stderr


@pytest.fixture
def paths(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    (tmp_path / "empty").mkdir()
    return {"FILE": str(f), "NONE": str(tmp_path / "missing"), "DIR": str(tmp_path / "empty")}


# (argv, text the error must contain: the option, or the pip install of the missing extra);
# FILE / NONE / DIR stand for a file, a path that does not exist and an empty folder
BAD = [
    (["frobnicate"], "invalid choice"), ([], "COMMAND"),
    (["sample", "-n", "x"], "-n"), (["sample", "-n", "0"], "-n"), (["sample", "-n", str(10 ** 12)], "-n"),
    (["query", "random", "-n", str(10 ** 9)], "-n"), (["profile", "--space", "s", "--rounds", "3"], "--rounds"),
    (["profile", "--space", "s", "--device", ""], "--device"), (["profile", "--space", "s", "--threads", "1000000"], "--threads"), (["sample", "--space", "xl"], "--space"),
    (["sample", "--seed", "1.5"], "--seed"), (["sample", "--format", "xml"], "--format"),
    (["info"], "arch"), (["info", "@NONE"], "arch"), (["info", "{bad json"], "arch"),
    (["info", "gpt-s-1-2"], "arch"), (["info", "gpt-s-10-384-3-4-2-4-4-2-3-4-3-2-4-4-4-12-8-8-4-8-12-8-True",
                                       "--batch", "0"], "--batch"),
    (["info", "x", "--dtype", "int8"], "--dtype"),
    (["query", "random", "--devices", "nope"], "devices"), (["query", "random", "--metrics", "lat@@"], "--metrics"),
    (["query", "random", "--metrics", "nope"], "metrics"), (["query", "random", "-n", "-2"], "-n"),
    (["query", "random", "--space", "q"], "--space"), (["query", "random", "random"], "arch"),
    (["query", "random", "--devices", "a,,b"], "--devices"),
    (["fit-surrogates", "--data", "NONE"], "--data"), (["fit-surrogates", "--data", "FILE"], "--data"),
    (["fit-surrogates", "--out", "FILE"], "--out"), (["fit-surrogates", "--data", "DIR", "--out", "NONE"], "--data"), (["fit-surrogates", "--spaces", "s,q"], "--spaces"),
    (["fit-surrogates", "--nthread", "0"], "--nthread"),
    (["profile"], "--space"), (["profile", "--space", "s", "--device", "cuda"], "--device"),
    (["profile", "--space", "s", "--out", "NONE"], "--table"), (["profile", "--space", "s", "-n", "-1"], "-n"),
    (["profile", "--space", "s", "--indices", "5-2"], "--indices"),
    (["profile", "--space", "s", "--max-seconds", "0"], "--max-seconds"),
    (["profile", "--space", "s", "--protocol", "3"], "--protocol"),
    (["corpus", "--threads", "0"], "--threads"), (["corpus", "--seed", "x"], "--seed"),
    (["train", "--corpus", "DIR"], "--run-dir"), (["train", "--run-dir", "DIR"], "--corpus"), (["train", "--run-dir", "DIR", "--device", "cuda"], "--torch-device"),
    (["train", "--run-dir", "DIR", "--corpus", "NONE"], "--corpus"),
    (["train", "--run-dir", "DIR", "--corpus", "DIR", "--steps", "x"], "--steps"),
    (["train", "--run-dir", "DIR", "--corpus", "DIR", "--steps", "auto"], "--auto-seconds"),
    (["train", "--run-dir", "DIR", "--lr", "-1"], "--lr"),
    (["evaluate", "--run-dir", "NONE"], "--run-dir"), (["evaluate", "--run-dir", "DIR", "--percent", "30"], "--percent"),
    (["evaluate", "--run-dir", "DIR", "--device", "cpu"], "--torch-device"),
    (["perplexity-table", "--results", "DIR"], "--table"),
    (["perplexity-table", "--results", "DIR", "--out", "NONE"], "--table"),
    (["perplexity-table", "--results", "NONE", "--table", "NONE"], "--results"),
    (["perplexity-table", "--results", "DIR", "--table", "NONE/t.h5"], "results"),
    (["run"], "--objectives"), (["run", "--objectives", "flops,params", "--budget", "0"], "--budget"),
    (["run", "--objectives", "nope,flops", "--no-plots", "--workers", "1"], "nope"),
    (["run", "--objectives", "params,flops", "--option", "pop_size", "--no-plots"], "--option"),
    (["run", "--objectives", "params,flops", "--out", "FILE"], "--out"),
    (["run", "--objectives", "params,flops", "--workers", "0"], "--workers"),
    (["run", "--objectives", "params,flops", "--backend", "dask"], "--backend"),
    (["reproduce", "--split", "x"], "--split"), (["reproduce", "--budget", "0"], "--budget"),
    (["reproduce", "--seeds", "-1"], "--seeds"),
    (["leaderboard"], "RESULTS"), (["leaderboard", "NONE"], "RESULTS"), (["leaderboard", "DIR", "--alpha", "0"], "--alpha"),
    (["leaderboard", "DIR", "--split", "all"], "--split"),
    (["gpu-plan", "merge"], "results"), (["gpu-plan", "merge", "NONE"], "results"),
    (["gpu-plan", "--device", "cuda:0", "--out", "DIR"], "--device"), (["gpu-plan", "--lease-left", "-1"], "--lease-left"),
    (["gpu-plan"], "--out"), (["gpu-plan", "--call-seconds", "x"], "--call-seconds"),
    (["gpu-plan", "sync"], "action"),
]


def _run_bad(argv, paths, capsys):
    argv = [a.replace("NONE", paths["NONE"]).replace("FILE", paths["FILE"]).replace("DIR", paths["DIR"])
            if a not in ("--device", "--table") else a for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a) or "(none)" for a, _ in BAD])
def test_bad_invocation_is_one_clear_error(argv, needle, paths, capsys, tmp_path, monkeypatch):
    # from an empty folder: relative defaults (e.g. train's corpus_cache/gpt2) must not exist, or a
    # checkout that has built the corpus would start a real training run instead of the error
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    rc, err = _run_bad(argv, paths, capsys)
    assert rc == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    command = argv[0] if argv and argv[0] in COMMANDS else ""
    assert last.startswith(f"hwgptbench {command}".strip() + ": error: "), last
    assert needle in last, last
    assert not Path(paths["NONE"]).exists() and not any(Path(paths["DIR"]).iterdir()), "nothing written"


# (argv, modules made unimportable, the extra the error must name)
MISSING = [
    (["profile", "--space", "s", "-n", "1", "--table", "DIR/p.h5"], ("torch",), "torch"),
    (["train", "--run-dir", "DIR", "--corpus", "DIR"], ("torch",), "torch"),
    (["evaluate", "--run-dir", "DIR", "--corpus", "DIR"], ("torch",), "torch"),
    (["corpus", "--out", "DIR/c", "--only-text"], ("tiktoken",), "train"),
    (["fit-surrogates", "--out", "DIR/s"], ("xgboost",), "fit"),          # --data: the shipped tables
    (["run", "--objectives", "params,flops"], ("matplotlib",), "moo"),
    (["run", "--objectives", "params,flops", "--no-plots", "--backend", "ray"], ("ray",), "ray"),
    (["reproduce", "--out", "DIR/r"], ("moocore",), "moo"),
    (["leaderboard", "DIR"], ("scipy",), "moo"),
]


@pytest.mark.parametrize("argv,blocked,extra", MISSING, ids=[" ".join(a[:1] + list(b)) for a, b, _ in MISSING])
def test_missing_extra_names_the_pip_install(argv, blocked, extra, paths, capsys, monkeypatch):
    for m in blocked:
        monkeypatch.setitem(sys.modules, m, None)
    rc, err = _run_bad(argv, paths, capsys)
    assert rc == 2 and "Traceback" not in err, err
    assert f"pip install 'hwgptbench[{extra}]'" in err, err
    assert not any(Path(paths["DIR"]).iterdir()), "nothing is written before the check"


def test_locked_table_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("torch")
    from hwgptbench.files import WriterLock
    table = tmp_path / "p.h5"
    with WriterLock(table):
        rc = main(["profile", "--space", "s", "--backend", "cpu", "--seq", "8", "--warmup", "0", "--repeats", "1",
                   "--threads", "1", "--device", "testcpu", "--quiet", "-n", "1", "--table", str(table)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and str(table) in err, err
    assert not table.exists()


def test_which_errors_are_a_users_and_which_a_bug():
    assert user_error(ModuleNotFoundError("x", name="optuna"), "run") == \
        "needs the 'moo' extra (optuna is missing): pip install 'hwgptbench[moo]'"
    assert "hwgptbench[fit]" in user_error(ModuleNotFoundError("x", name="scipy.stats"), "fit-surrogates")
    assert "hwgptbench[moo]" in user_error(ModuleNotFoundError("x", name="scipy.stats"), "leaderboard")
    assert user_error(ModuleNotFoundError("x", name="hwgptbench.nope"), "run") is None     # our bug
    assert user_error(ImportError("cannot import name 'f'"), "run") is None
    assert user_error(KeyError("k"), "run") is None and user_error(ZeroDivisionError(), "run") is None
    assert user_error(ValueError("--budget: bad"), "run") == "--budget: bad"


def test_a_bug_still_shows_its_traceback(monkeypatch):
    from hwgptbench.cli import arch
    monkeypatch.setattr(arch, "cmd_sample", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["sample"])


def test_query_list_needs_no_architecture_and_dicts_ask_for_space(capsys):
    assert main(["query", "--list", "--space", "m"]) == 0
    assert '"metrics"' in capsys.readouterr().out
    assert main(["query"]) == 2
    assert "or --list" in capsys.readouterr().err
    d = '{"sample_embed_dim": 384, "sample_n_layer": 10, "sample_mlp_ratio": [3,3,3,3,3,3,3,3,3,3], ' \
        '"sample_n_head": [8,8,8,8,8,8,8,8,8,8], "sample_bias": "False"}'
    assert main(["query", d]) == 2
    assert "--space" in capsys.readouterr().err
    assert main(["query", d, "--space", "s", "--metrics", "params"]) == 0


def test_a_closed_pipe_is_not_an_error():
    # `hwgptbench query ... | head -1`: the reader leaves early; no "Broken pipe" message, exit 0
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-m", "hwgptbench.cli", "query", "random", "-n", "5000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "Broken pipe" not in err and "Traceback" not in err, err


def test_paths_that_are_not_what_they_should_be_are_named(tmp_path, capsys, monkeypatch):
    """A symlink loop, a folder where a table belongs, a path through a file, a binary @file: each
    an error naming the path and what stands there, and nothing is replaced (issue 21: a --table
    that was a symlink loop was replaced by a new table)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "a.json").write_bytes(bytes(range(128, 256)))
    cases = [(["profile", "--space", "s", "--table", "loop", "-n", "1"], "'loop' is not a table file (it is a symlink that leads nowhere"),
             (["profile", "--space", "s", "--table", "folder", "-n", "1"], "'folder' is not a table file (it is a folder)"),
             (["profile", "--space", "s", "--table", "file/t.h5", "-n", "1"], "its folder 'file' is not a folder (it is a file)"),
             (["profile", "--space", "s", "--table", "loop/t.h5", "-n", "1"], "its folder 'loop' is not a folder (it is a symlink"),
             (["fit-surrogates", "--data", "loop"], "'loop' is not a folder (it is a symlink that leads nowhere"),
             (["query", "@a.json", "--space", "s"], "'a.json' is not UTF-8 text")]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert needle in last and "Errno" not in last and "codec" not in last, last
    assert (tmp_path / "loop").is_symlink() and (tmp_path / "file").read_text() == "x"
    from hwgptbench.files import check_writable
    with pytest.raises(PermissionError, match="is a symlink"):
        check_writable(tmp_path / "loop")


def test_query_random_draws_what_sample_draws_and_prints_valid_json_in_chunks(capsys):
    import json

    from hwgptbench import Benchmark
    from hwgptbench.cli import query as q
    assert main(["query", "random", "--space", "m", "-n", "25", "--seed", "7", "--metrics", "params", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch_id"] for r in rows] == [a.id for a in Benchmark("m").sample(25, seed=7)]
    import pandas as pd
    df = pd.DataFrame({"arch_id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    q._print_rows(df, True, chunk=2)                   # records split over chunks: still one JSON list
    assert json.loads(capsys.readouterr().out) == df.to_dict(orient="records")
    q._print_rows(df, False, chunk=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].split() == ["arch_id", "x"]


def test_query_random_streams_blocks_with_the_same_draws_and_values(capsys, monkeypatch):
    """Blocks of 4 rows (instead of 131,072): the rows, ids and values must equal one query of the
    whole sample (the truth), in one JSON list and one table with one header."""
    import json

    import hwgptbench.space as space_module
    from hwgptbench import Benchmark
    monkeypatch.setattr(space_module, "_SAMPLE_BLOCK", 4)
    bench = Benchmark("s")
    truth = bench.query(bench.space.sample_features(10, seed=3, dtype=np.int16), metrics=["params", "latency_ms"])
    assert main(["query", "random", "-n", "10", "--seed", "3", "--metrics", "params,latency_ms", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10 and [r["arch_id"] for r in rows] == [a.id for a in Benchmark("s").sample(10, seed=3)]
    for c in truth.columns:
        assert np.allclose([r[c] for r in rows], truth[c], rtol=1e-12)
    assert main(["query", "random", "-n", "10", "--seed", "3", "--metrics", "params"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11 and lines[0].split() == ["arch_id", "params"]


def test_corpus_ranks_without_the_gpt2_corpus_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                        # no corpus_cache/gpt2 here
    assert main(["corpus", "--ranks", "8192"]) == 2
    assert "--from: not given, and its default 'corpus_cache/gpt2' is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv, option", [
    (["profile", "--space", "xs", "-n", "1", "--backend", "cpu", "--quiet"], "--data-dir"),
    (["import-reference", "ref.json"], "--data-dir"),
    (["gpu-plan", "merge", "lease"], "--data-dir"),
    (["fit-surrogates", "--spaces", "xs"], "--out"),
])
def test_the_packages_own_folders_are_written_only_when_named(argv, option, tmp_path, monkeypatch, capsys):
    """The package's data and surrogates folders are pointed at scratch copies, so a command that
    wrongly wrote would write there; the default 'data' then resolves to the package's folder."""
    (tmp_path / "data" / "xs").mkdir(parents=True)
    (tmp_path / "sur").mkdir()
    (tmp_path / "ref.json").write_text("{}")
    (tmp_path / "lease").mkdir()
    monkeypatch.setenv("HWGPTBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HWGPTBENCH_SURROGATES", str(tmp_path / "sur"))
    monkeypatch.chdir(tmp_path)
    if argv[0] == "fit-surrogates":
        import shutil
        from hwgptbench.paths import data_dir
        shutil.copy(Path(__file__).parents[1] / "data" / "xs" / "cpu_epyc_f25m17_2c.h5", data_dir() / "xs")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert option in err and "package's own folder" in err and "only when named" in err
    assert sorted(p.relative_to(tmp_path / "data").as_posix() for p in (tmp_path / "data").rglob("*")) == (
        ["xs", "xs/cpu_epyc_f25m17_2c.h5"] if argv[0] == "fit-surrogates" else ["xs"])
    assert not any((tmp_path / "sur").iterdir())


def test_errno_texts_are_wrapped_with_the_path_and_what_was_expected(tmp_path, capsys):
    """Real faults: a file where the output folder's parent should be, and a symlink loop read."""
    (tmp_path / "afile").write_text("x")
    data = Path(__file__).parents[1] / "data"
    assert main(["fit-surrogates", "--data", str(data), "--out", str(tmp_path / "afile" / "sur"), "--spaces", "xs"]) == 2
    err = capsys.readouterr().err
    assert "afile" in err and "has a file where a folder was expected (errno ENOTDIR)" in err and "[Errno" not in err
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError) as e:
        loop.read_text()
    assert user_error(e.value, "x") == f"{str(loop)!r}: is a symlink loop (errno ELOOP)"
    with pytest.raises(UnicodeDecodeError) as e:
        b"\xff\xfe".decode("utf-8")
    assert "not UTF-8 text" in user_error(e.value, "x") and "codec" not in user_error(e.value, "x")
