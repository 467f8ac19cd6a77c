"""The plan's memory between calls, and what it hands back through $OUT.

The work folder (default ``runs/gpu_plan``, ignored by git, so it stays on the lent machine between
calls) holds ``state.json`` (what each stage did, the lease plan, preflight and calibration
figures), ``log.txt``, the profile tables and the supernet run. $OUT is emptied before every call
and only 8 files of at most 16 MiB come back, flat: after every block of work the result files are
copied into $OUT under fixed names (``state.json``, ``log.txt``, ``{space}_{device}.h5``,
``supernet_{space}.tar.gz``), each written to a ``.partial`` name first and renamed, so a call killed
at its limit still returns every finished file whole.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import shutil
import tarfile
import time
from pathlib import Path

from ..files import write_bytes

__all__ = ["PlanState", "publish", "MAX_OUT_FILES", "MAX_OUT_BYTES", "STATE_VERSION", "pack_run"]

STATE_VERSION = 1
MAX_OUT_FILES = 8
MAX_OUT_BYTES = 16 * 2 ** 20


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class PlanState:
    """state.json of the work folder: stages' status and figures, the lease plan, the calls."""

    def __init__(self, work_dir, data: dict):
        self.work_dir = Path(work_dir)
        self.data = data

    @property
    def path(self) -> Path:
        return self.work_dir / "state.json"

    @classmethod
    def load(cls, work_dir, config: dict) -> "PlanState":
        """The work folder's state, or a new one; refuses a folder planned with another config."""
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        p = work_dir / "state.json"
        if p.exists():
            try:
                data = json.loads(p.read_bytes())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ValueError(f"work_dir: {str(p)!r} is not valid JSON ({e}); use a new --work-dir") from None
            if not isinstance(data, dict) or not isinstance(data.get("stages", {}), dict) \
                    or not isinstance(data.get("calls", []), list):
                raise ValueError(f"work_dir: {str(p)!r} is not a plan state (expected an object with "
                                 "'version', 'config', 'stages' and 'calls'); use a new --work-dir")
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"work_dir: {str(p)!r} was written by plan version {data.get('version')!r}, "
                                 f"this is version {STATE_VERSION}; use a new --work-dir")
            if data.get("config") != config:
                diff = sorted(k for k in set(config) | set(data.get("config", {}))
                              if config.get(k) != data.get("config", {}).get(k))
                raise ValueError(f"work_dir: {str(work_dir)!r} holds a plan with another configuration "
                                 f"(differs in {diff}); use a new --work-dir or the same options")
            return cls(work_dir, data)
        return cls(work_dir, {"version": STATE_VERSION, "config": config, "created": _now(), "calls": [],
                              "stages": {}, "lease_plan": None})

    def save(self) -> None:
        write_bytes(self.path, (json.dumps(self.data, indent=1, sort_keys=True) + "\n").encode())

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {"status": "pending", "seconds": 0.0, "calls": 0})

    def finished(self, name: str) -> bool:
        return self.stage(name)["status"] in ("done", "skipped", "failed")

    def log(self, text: str) -> None:
        line = f"{_now()} {text}"
        print(line, flush=True)
        with open(self.work_dir / "log.txt", "a") as f:
            f.write(line + "\n")


def pack_run(run_dir: Path, space: str) -> bytes:
    """The supernet run's small result files (train log, state, evaluation JSONL) as one .tar.gz
    (sorted names, fixed mtimes: the same files give the same bytes); never the weights."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for p in sorted(Path(run_dir).iterdir()):
            if p.suffix in (".json", ".jsonl") and p.is_file():
                data = p.read_bytes()
                info = tarfile.TarInfo(name=f"supernet_{space}/{p.name}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def publish(work_dir: Path, out_dir: Path, tables: dict, runs: dict) -> list[str]:
    """Copy the results into `out_dir`: state, log, `tables` ({out name: path}) and `runs`
    ({space: supernet run folder}); at most 8 files of at most 16 MiB, written atomically. The
    state.json in `out_dir` lists every other part with its sha256 (``published``), written last,
    so that a merge or report knows a missing or damaged part by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"state.json": work_dir / "state.json", "log.txt": work_dir / "log.txt", **tables}
    names = [n for n, p in files.items() if Path(p).exists()]
    names += [f"supernet_{s}.tar.gz" for s, d in runs.items() if Path(d).is_dir()]
    if len(names) > MAX_OUT_FILES:
        raise RuntimeError(f"$OUT: {len(names)} files would not all come back (at most {MAX_OUT_FILES}): {names}")
    published = {}
    for name in names:
        if name.startswith("supernet_"):
            space = name[len("supernet_"):-len(".tar.gz")]
            data = pack_run(Path(runs[space]), space)
        elif name == "state.json":
            continue
        else:
            data = Path(files[name]).read_bytes()
        if len(data) > MAX_OUT_BYTES:
            raise RuntimeError(f"$OUT: {name} is {len(data) / 2 ** 20:.1f} MiB, over the {MAX_OUT_BYTES >> 20} MiB "
                               "that come back")
        write_bytes(out_dir / name, data)
        if name != "log.txt":                       # the log grows after publishing; it is not evidence
            published[name] = hashlib.sha256(data).hexdigest()
    if "state.json" in names:
        state = json.loads(Path(files["state.json"]).read_text())
        state["published"] = published
        write_bytes(out_dir / "state.json", (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())
    return names


def copy_if_missing(src: Path, dest: Path) -> bool:
    """Start `dest` from `src` (e.g. a committed table) when `dest` does not exist yet."""
    if Path(src).exists() and not Path(dest).exists():
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return True
    return False


def elapsed(t0: float) -> float:
    return time.time() - t0
