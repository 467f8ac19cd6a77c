"""`hwgptbench gpu-plan merge DIR`: bring what a lease returned into data/, refit the surrogates
and regenerate the problems' bounds and reference fronts, in one command.

Everything is read and checked before anything is written: every returned table must be valid,
of the space and device its name says, and of the same protocol and hardware as the table it
extends; rows already in data/ are never duplicated or replaced. A supernet's perplexities extend
an existing perplexity table only when they come from the same training run (its run id) and the
same corpus. Tables are written atomically, one by one, after all checks passed.
"""
from __future__ import annotations

import hashlib
import json
import re
import tarfile
import tempfile
from pathlib import Path

from ..files import WriterLock
from ..validation import check_bool, check_path
from ..profiling.devices import describe_identity, identity_differences, table_identity
from ..tables import Table, TableError, is_rehearsal, merge_tables, read_table, write_table

__all__ = ["merge_results", "read_results_dir", "extend_tables"]

_TABLE = re.compile(r"([a-z])_([A-Za-z0-9_]+)\.h5")
_RUN_FILE = re.compile(r"supernet_([a-z])/((?:eval_[a-z]_f\d+|train_log)\.jsonl|state\.json)")


def read_results_dir(results_dir, scratch) -> dict:
    """The returned files of a lease, checked: {'state': dict, 'tables': {name: Table},
    'runs': {space: folder under `scratch` with the run's small files}}."""
    d = Path(results_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"results: {str(d)!r} is not a folder")
    state_path = d / "state.json"
    if not state_path.exists():
        raise FileNotFoundError(f"results: {str(d)!r} has no state.json; is it the $OUT of a gpu-plan call?")
    try:
        state = json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"results: {str(state_path)!r} is not valid JSON text ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise ValueError(f"results: {str(state_path)!r} holds {type(state).__name__}, not the plan's state object")
    _check_state_shape(state, state_path)
    _check_parts(d, state)
    tables = {}
    for p in sorted(d.glob("*.h5")):
        m = _TABLE.fullmatch(p.name)
        if not m:
            raise ValueError(f"results: unexpected table name {p.name!r}; expected {{space}}_{{device}}.h5")
        t = read_table(p)
        if t.kind != "profile" or t.space != m[1] or t.source != m[2]:
            raise TableError(f"results: {p.name} holds a {t.kind} table of space {t.space!r} for {t.source!r}")
        tables[p.name] = t
    runs = {}
    for p in sorted(d.glob("supernet_*.tar.gz")):
        tmp = Path(scratch) / p.name.split(".")[0]
        tmp.mkdir(parents=True)
        with tarfile.open(p, "r:gz") as tar:
            for member in tar.getmembers():
                m = _RUN_FILE.fullmatch(member.name)
                if not member.isfile() or not m:
                    raise ValueError(f"results: {p.name} holds an unexpected member {member.name!r}")
                (tmp / m[2]).write_bytes(tar.extractfile(member).read())
        runs[p.name[len("supernet_"):-len(".tar.gz")]] = tmp
    return {"state": state, "tables": tables, "runs": runs}


def _check_state_shape(state: dict, path: Path) -> None:
    """The fields a merge or report reads have the plan's shapes (a damaged or hand-edited state is
    an error naming the field, not an AttributeError deep in the report)."""
    def bad(field, value, want):
        raise ValueError(f"results: {str(path)!r}: {field} is {type(value).__name__}, expected {want}; "
                         "the state was edited or damaged")

    for field, kind in (("stages", dict), ("calibration", dict), ("preflight", dict), ("config", dict),
                        ("calls", list)):
        if field in state and not isinstance(state[field], kind):
            bad(field, state[field], kind.__name__)
    for group in ("stages", "calibration"):
        for name, v in state.get(group, {}).items():
            if not isinstance(v, dict):
                bad(f"{group}.{name}", v, "an object")
    for name, st in state.get("stages", {}).items():
        if not isinstance(st.get("status"), str) or not all(
                isinstance(st.get(k), (int, float)) and not isinstance(st.get(k), bool) for k in ("seconds", "calls")):
            raise ValueError(f"results: {str(path)!r}: stages.{name} has a status, seconds or calls of the wrong "
                             "type; the state was edited or damaged")


def _check_parts(d: Path, state: dict) -> None:
    """Every part state.json lists (``published``: name -> sha256) is there and intact, and no table
    or run is there that it does not list. A state of a plan version before the list is read as it
    is (its parts cannot be checked)."""
    published = state.get("published")
    if published is None:
        return
    if not isinstance(published, dict):
        raise ValueError(f"results: {str(d / 'state.json')!r}: 'published' is not a name -> sha256 map")
    for name, sha in sorted(published.items()):
        p = d / name
        if not p.is_file():
            raise FileNotFoundError(f"results: {str(p)!r} is missing; the lease published it (state.json lists "
                                    "it): copy it back from where the call's files came, nothing was merged")
        if hashlib.sha256(p.read_bytes()).hexdigest() != sha:
            raise ValueError(f"results: {str(p)!r} differs from what the lease published (sha256); it was "
                             "changed or damaged: nothing was merged")
    extra = sorted(p.name for p in d.iterdir() if p.name.endswith((".h5", ".tar.gz")) and p.name not in published)
    if extra:
        raise ValueError(f"results: {extra} in {str(d)!r} are not parts of this lease (state.json does not list "
                         "them); remove them: nothing was merged")


def _same_hardware(base: Table, new: Table) -> None:
    """Refuse rows of other hardware (another GPU model, a CPU of another identity: see
    profiling.devices) under one device name."""
    a, b = table_identity(base.provenance), table_identity(new.provenance)
    if identity_differences(a, b):
        raise TableError(f"hardware: {new.source} rows measured on {describe_identity(b)} cannot extend a "
                         f"table measured on {describe_identity(a)}")


def merge_results(results_dir, data_dir="data", surrogates_dir=None, refit: bool = True, fronts: bool = True,
                  allow_rehearsal: bool = False, log=print) -> dict:
    """Merge a lease's returned folder into `data_dir` (see the module docstring); returns a summary."""
    results_dir, data_dir = check_path(results_dir, "results_dir"), check_path(data_dir, "data_dir")
    surrogates_dir = None if surrogates_dir is None else check_path(surrogates_dir, "surrogates_dir")
    for field, v in (("refit", refit), ("fronts", fronts), ("allow_rehearsal", allow_rehearsal)):
        check_bool(v, field)
    if data_dir.exists() and not data_dir.is_dir():
        raise NotADirectoryError(f"data_dir: {str(data_dir)!r} is a file; expected the data folder (e.g. 'data')")
    if not callable(log):
        raise TypeError(f"log: expected a callable such as print, got {log!r} ({type(log).__name__})")
    with tempfile.TemporaryDirectory(prefix="gpu_plan_merge_") as scratch:
        return _merge(read_results_dir(results_dir, scratch), results_dir, data_dir, surrogates_dir, refit,
                      fronts, allow_rehearsal, log)


def _merge(res, results_dir, data_dir, surrogates_dir, refit, fronts, allow_rehearsal, log) -> dict:
    from ..training.evaluate import build_perplexity_table

    # the state's mark, or the tables' own (a rehearsal's device names are 'rehearsal*', covered by
    # their checksums): editing state.json cannot turn a rehearsal into data
    rehearsal = bool(res["state"].get("config", {}).get("rehearsal")) or any(
        is_rehearsal(t) for t in res["tables"].values())
    if rehearsal and not allow_rehearsal:
        raise ValueError(f"results: {str(results_dir)!r} comes from a rehearsal (fake energy, tiny supernet); "
                         "it never goes into the shipped data (allow_rehearsal=True for a scratch folder)")
    data_dir = Path(data_dir)
    _check_destinations(data_dir, surrogates_dir, refit, fronts, rehearsal)
    new_tables = {data_dir / t.space / f"{t.source}.h5": t for t in res["tables"].values()}
    for space, run in res["runs"].items():
        if not list(run.glob(f"eval_{space}_f*.jsonl")):
            log(f"supernet_{space}: no evaluations returned; nothing to merge")
            continue
        manifest = data_dir / "corpus" / "manifest.json"     # (a rehearsal's tiny corpus has none)
        new = build_perplexity_table(run, space, manifest)
        _check_corpus(new, manifest, rehearsal)
        new_tables[data_dir / space / "perplexity.h5"] = new
    summary = {"tables": extend_tables(new_tables, log), "rehearsal": rehearsal}
    spaces = sorted({t.space for t in new_tables.values()})
    if refit and new_tables:
        from ..paths import surrogates_dir as default_surrogates
        from ..surrogates import fit_all
        manifest = fit_all(data_dir, surrogates_dir or default_surrogates(), spaces=spaces, log=log)
        summary["surrogates"] = sorted(e["column"] for e in manifest["surrogates"].values() if e["space"] in spaces)
    if fronts and new_tables:
        summary["fronts"] = _regenerate_fronts(log)
    return summary


def _check_destinations(data_dir: Path, surrogates_dir, refit: bool, fronts: bool, rehearsal: bool) -> None:
    """Surrogates and fronts follow the data. Tables merged into a folder other than the package's
    data never refit the package's surrogates unless that folder is named, and never remake its
    fronts; a rehearsal merges into scratch folders only (never the package's data or surrogates)."""
    from ..paths import is_shipped_data, is_shipped_surrogates
    if is_shipped_data(data_dir):
        if rehearsal:
            raise ValueError(f"data_dir: {str(data_dir)!r} is the package's data; a rehearsal merges into a "
                             "scratch folder only (--data-dir SCRATCH)")
        return
    if refit and (surrogates_dir is None or rehearsal and is_shipped_surrogates(surrogates_dir)):
        raise ValueError("surrogates_dir: a rehearsal refits into a scratch folder only; pass --surrogates-dir "
                         "SCRATCH (or --no-refit)" if rehearsal else
                         f"surrogates_dir: {str(data_dir)!r} is not the package's data, so its surrogates do not "
                         "go into the package's: name a folder (--surrogates-dir) or merge tables only (--no-refit)")
    if fronts:
        raise ValueError("fronts: a rehearsal never regenerates the package's bounds and reference fronts; "
                         "pass --no-fronts" if rehearsal else
                         f"fronts: the package's bounds and reference fronts come from the package's data, not "
                         f"{str(data_dir)!r}: pass --no-fronts (fronts=False)")


def extend_tables(new_tables: dict, log=print) -> dict:
    """Write each `new_tables[dest]` (a Table) into `dest`: a new file, or the table there plus the
    rows it lacks, after the checks of `_extend`; every table is checked (under its writer lock)
    before any is written. Returns {str(dest): {"added": n, "rows": n}}. The one way measured rows
    from elsewhere (a lease, another profiler's reference file) enter data/."""
    locks = [WriterLock(dest).acquire() for dest in new_tables]     # no other writer until we are done
    try:
        planned = [(dest, *_extend(dest, new)) for dest, new in new_tables.items()]   # every check first
        out = {}
        for dest, table, added in planned:
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_table(table, dest)
            out[str(dest)] = {"added": added, "rows": len(table)}
            log(f"{dest}: +{added} rows, {len(table)} in all")
        return out
    finally:
        for lock in locks:
            lock.release()


def _extend(dest: Path, new: Table) -> tuple[Table, int]:
    """(the table to write at `dest`, rows added): `new` itself, or the table there plus the rows
    of `new` it lacks, after checking hardware (profiles) or training run (perplexity)."""
    if not dest.exists():
        return new, len(new)
    base = read_table(dest)
    if new.kind == "perplexity":
        a, b = (base.provenance.get("training", {}).get("run_id"), new.provenance.get("training", {}).get("run_id"))
        if a != b or a is None:
            raise TableError(f"perplexity: {dest} holds run {a!r}; the returned evaluations are of run {b!r}: "
                             "two supernets' perplexities never share a table")
    else:
        _same_hardware(base, new)
    merged = merge_tables(base, new)
    return merged, len(merged) - len(base)


def _check_corpus(table: Table, manifest: Path, rehearsal: bool) -> None:
    """The evaluations must be of the corpus whose manifest data/ ships."""
    import hashlib
    if rehearsal:
        return
    if not manifest.exists():
        raise FileNotFoundError(f"corpus: {manifest} is missing; the perplexities name their corpus by its sha256")
    want = hashlib.sha256(manifest.read_bytes()).hexdigest()
    got = {f.get("corpus_manifest_sha256") for f in table.provenance.get("fidelities", {}).values()}
    if got != {want}:
        raise TableError(f"corpus: the evaluations were made on corpus {sorted(map(str, got))}, "
                         f"not on the one {manifest} describes ({want})")


def _regenerate_fronts(log) -> list[str]:
    """Bounds and fronts of every standard problem served (`moo.reference_fronts`, in the package)."""
    from ..moo.reference_fronts import MADE_BY, make_reference_fronts
    make_reference_fronts(log=log)
    log("bounds and reference fronts regenerated")
    return [MADE_BY]
