"""CPU profiling protocol v2: repeats spread over time in rounds, a sentinel, the load recorded.

On a shared CPU the machine's speed drifts over minutes by more than one architecture's repeats
vary, so measuring all repeats of an architecture back to back (v1) ranks architectures by when
they were measured as much as by what they cost. Here a block of architectures is measured in
`rounds` rounds, each round visiting every architecture of the block once in a new seeded order;
a visit builds the model afresh and times `repeats` forwards after a warm-up (and the decode
steps, if the protocol decodes). A fixed sentinel architecture, kept built, is timed every
`sentinel_every` visits; its raw series is stored in the table (`series/sentinel_*`) and every row
records the sentinel's level at its visits (`extra/sentinel_level_*`, 1 = the table's reference),
so drift can be seen and corrected. Every row records the load around its visits
(`extra/load1_max`, `extra/others_busy_max`) and how many processes made them (`extra/processes`).

A process can run in a speed mode of its own for its whole life (benchmarks.md, "drift over
hours"), so `run(one_round=True)` stops once it has completed a round: called again in a fresh
process for each round, every visit of an architecture is made by a different process and the
median of its visits rejects one odd process (scripts/profile_cpu.sh does this).

A row holds all its visits' repeats in time order (the robust statistic, the median, is taken by
whoever reads it). Visits are appended to a journal as they happen, one file per block
(``.{table}.visits.b{first}+{n}-{hash}.jsonl``), and rows are written when their block is complete,
so an interrupted run loses at most the visit in flight and a rerun resumes the block. Measured
visits are evidence: every journal line carries the sha256 of its content and is bound to its
table, its block and the host that measured it; a journal of another block is kept until that block
is run again, and a journal line that was edited, comes from another table, block or machine, or
holds a non-finite value stops the run with the line's number and what to do (never a silent
re-measure). Only the last line may be cut (a kill during a write); it is ignored.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from .devices import describe_identity
from .load import LoadProbe
from .profiling_set import PROFILING_SEED
from .run import Profiler, build_model

__all__ = ["RoundsProfiler", "sentinel_arch", "JournalError", "journal_path", "read_journal"]


class JournalError(ValueError):
    """A journal line that cannot be trusted: edited, foreign or non-finite (message names the line)."""


def journal_path(table_path, block: list[int]) -> Path:
    """The journal of one block of a table: its first position, its size and a hash of its members."""
    table_path = Path(table_path)
    h = hashlib.sha256(json.dumps([int(i) for i in block]).encode()).hexdigest()[:10]
    return table_path.with_name(f".{table_path.name}.visits.b{block[0]}+{len(block)}-{h}.jsonl")


# a metric with no meter on this host is missing (NaN) at every visit; every other value is measured
_MAY_BE_MISSING = {"energy_J"}


def _line_sha(rec: dict) -> str:
    return hashlib.sha256(json.dumps({k: v for k, v in rec.items() if k != "sha256"}, sort_keys=True).encode()).hexdigest()


def read_journal(path, table: str, block: list[int], host: str) -> list[dict]:
    """The verified lines of one block's journal (see the module docstring); [] if there is none."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise JournalError(f"journal: cannot read {str(path)!r} as UTF-8 text ({type(e).__name__}); move it "
                           "aside to re-measure its block (its visits are then not used)") from None
    recs = []
    how = (f"; it is left as it is: restore it, or move it aside (e.g. to {path.name}.bad) to re-measure "
           "the block's visits")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):           # the visit in flight when a run was killed
                continue
            raise JournalError(f"journal {str(path)!r} line {n}: not JSON{how}") from None
        if not isinstance(rec, dict) or rec.get("sha256") != _line_sha(rec):
            raise JournalError(f"journal {str(path)!r} line {n}: its checksum does not match its content "
                               f"(edited or damaged){how}")
        if rec.get("table") != table or rec.get("block") != block:
            raise JournalError(f"journal {str(path)!r} line {n}: belongs to table {rec.get('table')!r} block "
                               f"{rec.get('block')}, not {table!r} block {block}{how}")
        if rec.get("host") != host:
            raise JournalError(f"journal {str(path)!r} line {n}: measured on another machine "
                               f"({rec.get('host')!r}, this one is {host!r}); resume the block on that "
                               f"machine{how}")
        for m, v in (rec.get("raw") or {}).items():
            a = np.asarray(v, dtype=np.float64)
            if m in _MAY_BE_MISSING and a.size and np.isnan(a).all():
                continue
            if a.size == 0 or not np.isfinite(a).all() or (a <= 0).any():
                raise JournalError(f"journal {str(path)!r} line {n}: {m} holds {v!r}; expected positive "
                                   f"finite values{how}")
        if rec.get("kind") in ("visit", "sentinel") and "raw" not in rec:
            raise JournalError(f"journal {str(path)!r} line {n}: a {rec['kind']} without its measurements{how}")
        recs.append(rec)
    return recs


def sentinel_arch(space):
    """The sentinel: the middle choice of every gene (bias on), timed throughout a run."""
    from ..space import get_space
    sp = get_space(space)
    mid = lambda c: sorted(c)[len(c) // 2]  # noqa: E731
    L = mid(sp.n_layers)
    return sp.arch(mid(sp.embed_dims), L, [mid(sp.mlp_ratios)] * L, [mid(sp.n_heads)] * L, True)


class RoundsProfiler(Profiler):
    """A `Profiler` whose `run` follows protocol v2 (see the module docstring)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        if self.protocol.version != 2:
            raise ValueError(f"protocol: RoundsProfiler measures protocol version 2, got {self.protocol.version}")
        legacy = self.out.with_name(f".{self.out.name}.visits.jsonl")
        if legacy.exists():
            raise JournalError(f"journal: {str(legacy)!r} is a journal of an older version, without checksums; "
                               "its visits cannot be verified: move it aside to re-measure its block")
        ident = self.table.provenance.get("hardware", {}).get("identity", {})
        self._host = describe_identity(ident) + f" [{os.uname().nodename}]"
        self._table_key = f"{self.space.name}/{self.device}/{self.out.name}"
        self._probe = LoadProbe()
        self._sentinel = None
        self._visits_since_sentinel = 0
        self._rounds_completed = 0          # rounds this process completed (visits it made in them)
        self._journaled_run = None          # the block whose journal holds this process's run entry
        run = self.table.provenance["runs"][-1]
        run["affinity"] = sorted(self._probe.mine)
        run["pid"] = os.getpid()
        self.table.provenance.setdefault("sentinel", {"arch": sentinel_arch(self.space.name).id})

    # ---- one visit --------------------------------------------------------------------------
    def _record(self, kind: str, i: int, rnd: int, block: list[int]) -> dict:
        self._probe.start()
        if kind == "sentinel":
            arch, r, extra = self._sentinel_visit()
        else:
            arch, r, extra = self.visit(i)
        rec = {"kind": kind, "i": int(i), "round": rnd, "block": block, "t": extra["measured_at"], "pid": os.getpid(),
               **self._probe.stop(), "raw": {m: np.asarray(v, dtype=np.float64).ravel().tolist() for m, v in r.items()}}
        lines = [rec]
        journal = journal_path(self.out, block)
        if self._journaled_run != block or not journal.exists():
            # this process's provenance entry goes into the journal with its first visit of the block, so
            # the rows' provenance names every process that made their visits (--one-round: several)
            lines.insert(0, {"kind": "run", "block": block, "run": self.table.provenance["runs"][-1]})
            self._journaled_run = block
        for x in lines:
            x.update(table=self._table_key, host=self._host)
            x["sha256"] = _line_sha(x)
        with open(journal, "a") as f:
            f.write("".join(json.dumps(x) + "\n" for x in lines))
            f.flush()
            os.fsync(f.fileno())
        return rec

    def _sentinel_visit(self):
        from .measure import measure_cpu
        proto = self.protocol
        if self._sentinel is None:
            self._sentinel = build_model(sentinel_arch(self.space.name), self._pool)
            self._sentinel_idx = self._torch.randint(0, self.space.vocab_size, (proto.batch, proto.seq), generator=self._gen)
        r = measure_cpu(self._sentinel, self._sentinel_idx, proto.warmup, proto.repeats)
        r.pop("energy_J", None)
        if proto.decodes:
            r.update(self._decode(self._sentinel, 0))
        return self._sentinel.arch, r, {"measured_at": time.time()}

    # ---- the run ------------------------------------------------------------------------------
    def _resume(self, block: list[int]) -> list[dict]:
        """Visits of `block` already journaled, verified (other blocks' journals are left alone). A
        last line cut by a kill is cut off the file before new visits are appended after it."""
        path = journal_path(self.out, block)
        recs = read_journal(path, self._table_key, block, self._host)
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
        return recs

    def run(self, indices, max_seconds: float | None = None, deadline: float | None = None,
            progress: bool = True, one_round: bool = False) -> int:
        """Measure the `indices` not yet in the table, block by block, until done or `deadline` /
        `max_seconds` (or, with `one_round`, once this call has completed a round: see the module
        docstring); returns how many rows were added."""
        proto = self.protocol
        todo = self.todo(indices)
        stop = min(deadline if deadline is not None else np.inf,
                   time.time() + max_seconds if max_seconds is not None else np.inf)
        if self._pool is None:
            self._setup()
        added = 0
        while todo:
            block = todo[:proto.block]
            recs = self._resume(block)
            done = {(r["i"], r["round"]) for r in recs if r["kind"] == "visit"}
            rng = np.random.default_rng([PROFILING_SEED, block[0], len(block)])
            orders = [rng.permutation(block).tolist() for _ in range(proto.rounds)]
            for rnd, order in enumerate(orders):
                missing = [i for i in order if (i, rnd) not in done]
                if one_round and missing and self._rounds_completed:
                    return added            # this process has completed its round; the next one is another's
                for i in order:
                    if (i, rnd) in done:
                        continue
                    if time.time() > stop:
                        return added
                    if self._visits_since_sentinel % proto.sentinel_every == 0:
                        recs.append(self._record("sentinel", -1, rnd, block))
                    self._visits_since_sentinel += 1
                    recs.append(self._record("visit", i, rnd, block))
                    if progress:
                        med = np.median(recs[-1]["raw"]["latency_ms"])
                        print(f"[block of {len(block)}, round {rnd + 1}/{proto.rounds}] {i}: {med:.1f} ms "
                              f"(load {recs[-1]['load1']:.2f}, others busy {recs[-1]['others_busy']:.0%})", flush=True)
                if missing:                 # (the call returns above where it stops mid-round)
                    self._rounds_completed += 1
            recs.append(self._record("sentinel", -1, proto.rounds, block))     # closes the block's series
            self._write_block(block, recs)
            added += len(block)
            todo = todo[len(block):]
        return added

    def _write_block(self, block: list[int], recs: list[dict]) -> None:
        from ..profiling.profiling_set import profiling_set
        runs = self.table.provenance["runs"]
        known = {(r.get("started"), r.get("pid")) for r in runs}
        for r in recs:                      # the runs of other processes that made visits of this block
            if r["kind"] == "run" and (r["run"].get("started"), r["run"].get("pid")) not in known:
                runs.append(r["run"])
                known.add((r["run"].get("started"), r["run"].get("pid")))
        runs.sort(key=lambda r: r.get("started", ""))
        sent = [r for r in recs if r["kind"] == "sentinel"]
        metrics = [m for m in ("latency_ms", "decode_ms") if m in sent[0]["raw"]]
        prov = self.table.provenance["sentinel"]
        for m in metrics:                   # the series: time, then the sentinel's repeats
            rows = np.array([[r["t"], *r["raw"][m]] for r in sent], dtype=np.float64)
            key = f"sentinel_{m}"
            self.table.series[key] = rows if key not in self.table.series else np.vstack([self.table.series[key], rows])
            prov.setdefault(f"reference_{m}", float(np.median(rows[:, 1:])))   # the first block's median
        archs = profiling_set(self.space.name, max(block) + 1)
        for i in block:
            vs = sorted((r for r in recs if r["kind"] == "visit" and r["i"] == i), key=lambda r: r["t"])
            raw = {m: np.concatenate([v["raw"][m] for v in vs]) for m in vs[0]["raw"]}
            if "memory_MB" in raw:                          # analytic, the same at every visit
                raw["memory_MB"] = raw["memory_MB"][:1]
            busy = np.array([v["others_busy"] for v in vs], dtype=np.float64)
            pids = {v.get("pid") for v in vs}
            extra = {"measured_at": vs[0]["t"], "last_visit_at": vs[-1]["t"],
                     "processes": float(len(pids)) if None not in pids else np.nan,
                     "load1_max": max(v["load1"] for v in vs),
                     "others_busy_max": float(np.nanmax(busy)) if np.isfinite(busy).any() else np.nan}
            for m in metrics:
                s = self.table.series[f"sentinel_{m}"]
                level = np.interp([v["t"] for v in vs], s[:, 0], np.median(s[:, 1:], axis=1))
                extra[f"sentinel_level_{m}"] = float(np.mean(level) / prov[f"reference_{m}"])
            self.table.append(archs[i].id, i, raw, extra)
        from ..tables import write_table
        write_table(self.table, self.out)
        journal_path(self.out, block).unlink(missing_ok=True)      # its visits are the rows now
