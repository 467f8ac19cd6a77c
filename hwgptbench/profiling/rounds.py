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
whoever reads it). Visits are appended to a sidecar file as they happen (``.{table}.visits.jsonl``)
and rows are written when their block is complete, so an interrupted run loses at most the visit
in flight and a rerun resumes the block.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from .load import LoadProbe
from .profiling_set import PROFILING_SEED
from .run import Profiler, build_model

__all__ = ["RoundsProfiler", "sentinel_arch"]


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
        self.sidecar = self.out.with_name(f".{self.out.name}.visits.jsonl")
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
        if self._journaled_run != block or not self.sidecar.exists():
            # this process's provenance entry goes into the journal with its first visit of the block, so
            # the rows' provenance names every process that made their visits (--one-round: several)
            lines.insert(0, {"kind": "run", "block": block, "run": self.table.provenance["runs"][-1]})
            self._journaled_run = block
        with open(self.sidecar, "a") as f:
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
        """Visits of `block` already in the sidecar (those of another block are dropped)."""
        if not self.sidecar.exists():
            return []
        recs = []
        for line in self.sidecar.read_text().splitlines():
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:       # a line cut by a kill
                continue
        if any(r["block"] != block for r in recs):
            self.sidecar.unlink()
            return []
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
        self.sidecar.unlink(missing_ok=True)
