"""Perplexity and next-token accuracy of sub-networks on the held-out test split
(docs/PROTOCOLS.md section 6), and the perplexity table (section 5).

Every architecture is scored on the **same** fixed token budget: ``budget_tokens // seq``
non-overlapping windows of ``seq + 1`` tokens spread evenly over the test split (training never
saw the test split). Perplexity is pooled, ``exp(total NLL / total
tokens)``; accuracy is the fraction of positions whose arg-max logit is the next token. The
mean NLL of every window is kept too, so the evaluation noise (the standard error of an
architecture's NLL, and of the difference between two architectures on the same windows) can
be measured against the spread between architectures.

Results are appended per architecture to a JSON-lines file (resumable, no duplicates); the table
writer turns the files of several training fractions into one HDF5 table.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

from .. import cost
from ..space import as_arch, get_space
from ..validation import check_int

__all__ = ["eval_windows", "evaluate_arch", "evaluate_profiling_set", "read_results", "perplexity_table",
           "build_perplexity_table", "noise_report", "DEFAULT_BUDGET_TOKENS"]

DEFAULT_BUDGET_TOKENS = 65536      # 64 windows of 1024 tokens per architecture


def eval_windows(tokens: np.ndarray, budget_tokens: int = DEFAULT_BUDGET_TOKENS, seq: int = cost.BLOCK_SIZE,
                 space=None):
    """(x, y) int64 arrays (n_windows, seq): the fixed evaluation windows, ``budget_tokens // seq``
    non-overlapping windows spread evenly over the whole split (so they sample many documents)."""
    cost.check_shape(1, seq, space)
    budget_tokens = check_int(budget_tokens, "budget_tokens", seq)
    n = budget_tokens // seq
    if n * (seq + 1) > len(tokens):
        raise ValueError(f"budget_tokens: {n} windows of {seq + 1} tokens asked for but the split holds "
                         f"{len(tokens)} tokens")
    starts = np.linspace(0, len(tokens) - seq - 1, n).round().astype(np.int64)
    win = np.stack([np.asarray(tokens[s:s + seq + 1], dtype=np.int64) for s in starts])
    return win[:, :-1], win[:, 1:]


def evaluate_arch(model, arch, x, y, batch: int = 16, device=None, bf16: bool | None = None) -> dict:
    """NLL, accuracy and per-window mean NLL of one sub-network on the windows (x, y), under the
    autocast its training used (`bf16`, as in `supernet.autocast`)."""
    import torch
    import torch.nn.functional as F

    from .supernet import autocast

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.set_sub_network(arch)
    model.eval()
    nll_sum, correct, win_nll = 0.0, 0, []
    with torch.inference_mode(), autocast(device, bf16):
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch]).to(device)
            yb = torch.from_numpy(y[i:i + batch]).to(device)
            logits = model(xb).float()
            nll = F.cross_entropy(logits.view(-1, logits.size(-1)), yb.reshape(-1), reduction="none")
            nll = nll.view(yb.shape).double()
            nll_sum += float(nll.sum())
            correct += int((logits.argmax(-1) == yb).sum())
            win_nll.extend(nll.mean(dim=1).cpu().tolist())
    n = int(y.size)
    return {"nll": nll_sum / n, "perplexity": math.exp(nll_sum / n), "accuracy": correct / n, "tokens": n,
            "window_nll": [round(v, 6) for v in win_nll]}


def read_results(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:      # a line cut by an interrupted write: ignore it
                continue
    return rows


def results_path(out_dir, space: str, percent: int) -> Path:
    return Path(out_dir) / f"eval_{space}_f{percent}.jsonl"


def evaluate_profiling_set(corpus_dir, run_dir, percent: int = 100, n: int = 2000, start: int = 0,
                           budget_tokens: int = DEFAULT_BUDGET_TOKENS, batch: int = 16, device=None,
                           max_seconds: float | None = None, results_dir=None, log=print,
                           threads: int | None = None) -> Path:
    """Evaluate profiling-set architectures start..n-1 at one training fraction (resumable).
    `corpus_dir` None: the corpus the run's space reads (`supernet.default_corpus_dir`)."""
    import torch

    from .corpus import load_split, manifest_hash
    from ..profiling.profiling_set import profiling_set
    from .supernet import check_corpus, default_corpus_dir, fits, load_supernet, torch_device_name

    if threads is not None:
        torch.set_num_threads(check_int(threads, "threads", 1))
    model, state = load_supernet(run_dir, percent, device)
    space = state["config"]["space"]
    seq = state["config"]["seq"]
    corpus_dir = corpus_dir or default_corpus_dir(space)
    check_corpus(corpus_dir, space)
    x, y = eval_windows(load_split(corpus_dir, "test"), budget_tokens, seq, space)
    out = results_path(results_dir or run_dir, space, percent)
    out.parent.mkdir(parents=True, exist_ok=True)
    windows = hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()
    previous = read_results(out)
    if any(r.get("windows_sha256") != windows for r in previous):
        raise ValueError(f"results: {str(out)!r} holds rows scored on other evaluation windows (another corpus, "
                         "budget or version); write to another folder")
    done = {r["arch_id"] for r in previous}
    archs = profiling_set(space, n)
    standalone = state["config"].get("sandwich", 2) == 1      # a standalone network scores itself only
    snap = state["snapshots"][str(percent)]
    meta = {"percent": percent, "step": snap["step"], "tokens_seen": snap["tokens_seen"],
            "budget_tokens": int(x.size), "seq": seq, "corpus_manifest_sha256": manifest_hash(corpus_dir),
            "windows_sha256": windows,
            "device": torch_device_name(model.wte.device)}
    t0, k, skipped = time.time(), 0, 0
    with open(out, "a") as f:
        for i in range(start, n):
            a = archs[i]
            if a.id in done:
                continue
            if standalone and a != model.arch:
                continue
            if not fits(a, model.arch):          # a smaller supernet than the space's largest
                skipped += 1
                continue
            if max_seconds is not None and time.time() - t0 > max_seconds:
                break
            r = evaluate_arch(model, a, x, y, batch, bf16=state["config"].get("bf16"))
            f.write(json.dumps({"arch_id": a.id, "index": i, **meta, **r}) + "\n")
            f.flush()
            k += 1
    log(f"evaluate: {k} architectures at {percent}% in {time.time() - t0:.1f} s -> {out}"
        + (f" ({skipped} outside the supernet skipped)" if skipped else ""))
    return out


def noise_report(rows: list[dict], space: str) -> dict:
    """Evaluation noise against the spread between architectures of the same embedding size.

    noise: median standard error of an architecture's mean NLL over its windows, and of the
    paired difference of two architectures on the same windows; spread: std of NLL across
    architectures within each embedding size. All in nats per token (ln perplexity).
    """
    by_e: dict[int, list[dict]] = {}
    for r in rows:
        by_e.setdefault(as_arch(r["arch_id"], space).embed_dim, []).append(r)
    out = {}
    for e, rs in sorted(by_e.items()):
        W = np.array([r["window_nll"] for r in rs])
        se = W.std(axis=1, ddof=1) / math.sqrt(W.shape[1])
        rng = np.random.default_rng(0)
        pairs = rng.integers(0, len(rs), size=(min(500, len(rs) ** 2), 2))
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        d = W[pairs[:, 0]] - W[pairs[:, 1]]
        se_pair = d.std(axis=1, ddof=1) / math.sqrt(W.shape[1]) if len(d) else np.array([np.nan])
        nll = np.array([r["nll"] for r in rs])
        nan = float("nan")
        out[int(e)] = {"n_archs": len(rs), "windows": int(W.shape[1]),
                       "spread_std_nll": float(nll.std(ddof=1)) if len(rs) > 1 else nan,
                       "median_se_nll": float(np.median(se)), "median_se_paired_diff": float(np.median(se_pair)),
                       "median_abs_paired_diff": float(np.median(np.abs(d.mean(axis=1)))) if len(d) else nan}
    return out


def perplexity_table(space: str, results: dict[int, list[dict]], provenance: dict):
    """One kind-'perplexity' Table from {percent: result rows}: raw metrics ``perplexity_f{p}`` and
    ``accuracy_f{p}`` (unit '1', one value each: the pooled figure over the fixed budget), NaN where
    an architecture was not evaluated at that fraction; extra columns ``nll_se_f{p}`` (standard error
    of the mean NLL over windows) and ``tokens_f{p}``."""
    from ..profiling.profiling_set import PROFILING_SEED
    from ..tables import Table

    sp = get_space(space)
    index: dict[str, int] = {}
    for rows in results.values():
        for r in rows:
            index.setdefault(r["arch_id"], int(r["index"]))
    ids = sorted(index, key=index.get)
    pos = {a: i for i, a in enumerate(ids)}
    n = len(ids)
    raw, units, sources, extra = {}, {}, {}, {}
    fid = {}
    for p in sorted(results):
        ppl, acc, se, tok = (np.full(n, np.nan) for _ in range(4))
        for r in results[p]:
            j = pos[r["arch_id"]]
            w = np.asarray(r["window_nll"], dtype=np.float64)
            ppl[j], acc[j], tok[j] = r["perplexity"], r["accuracy"], r["tokens"]
            se[j] = w.std(ddof=1) / math.sqrt(len(w)) if len(w) > 1 else np.nan
        for m, v in ((f"perplexity_f{p}", ppl), (f"accuracy_f{p}", acc)):
            raw[m], units[m], sources[m] = v[:, None], "1", "measured"
        extra[f"nll_se_f{p}"], extra[f"tokens_f{p}"] = se, tok
        first = results[p][0] if results[p] else {}
        fid[str(p)] = {k: first.get(k) for k in ("step", "tokens_seen", "budget_tokens", "device",
                                                  "corpus_manifest_sha256", "windows_sha256")}
        fid[str(p)]["n_archs"] = len(results[p])
    prov = {"profiling_set_seed": PROFILING_SEED, "fidelities": fid,
            "metrics": {"perplexity_f{p}": "exp(total NLL / total tokens) on the test split's first "
                                           "budget_tokens tokens, weights after p% of the training steps",
                        "accuracy_f{p}": "fraction of positions whose arg-max is the next token"},
            **provenance}
    for a in ids:
        sp.encode([a])      # every id must belong to the space
    return Table("perplexity", sp.name, "perplexity", ids, np.array([index[a] for a in ids], np.int64),
                 raw, units, sources, prov, extra)


def build_perplexity_table(results_dir, space: str, corpus_manifest="data/corpus/manifest.json",
                           standalone_runs=(), command=None):
    """The perplexity Table of one supernet run's result folder (``eval_{space}_f{p}.jsonl``,
    ``state.json``, ``train_log.jsonl``), with the training's provenance, its curve, the corpus
    manifest's sha256 and the evaluation-noise report. `standalone_runs`: folders of networks trained
    alone on the same recipe, whose measured throughput (tokens, seconds) is recorded as
    ``standalone_training``: what training one architecture really cost (`moo.sim_cost`). The build
    itself is recorded under ``runs`` as the CPU tables record theirs (when, git commit, `command`
    (default: this process's), library versions, host); merging tables keeps every build."""
    import datetime as _dt
    import hashlib
    import platform
    import re
    import sys

    from ..profiling.run import git_commit, library_versions

    res = Path(results_dir)
    results = {}
    for f in sorted(res.glob(f"eval_{space}_f*.jsonl")):
        results[int(re.search(r"_f(\d+)\.jsonl$", f.name).group(1))] = read_results(f)
    if not results:
        raise FileNotFoundError(f"results: no eval_{space}_f*.jsonl in {str(res)!r}")
    state = json.loads((res / "state.json").read_text()) if (res / "state.json").exists() else {}
    # a call killed after a periodic checkpoint repeats some steps on resume: keep the last row of each
    curve = list({(r.get("step"), "val_loss_max" in r): r for r in read_results(res / "train_log.jsonl")}.values())
    curve.sort(key=lambda r: (r.get("step", 0), "val_loss_max" in r))
    man = Path(corpus_manifest)
    prov = {"training": {k: state.get(k) for k in ("config", "tokens_seen", "train_seconds", "device", "torch",
                                                   "snapshots", "corpus_manifest_sha256", "auto_steps", "run_id")},
            "train_curve": [{k: r.get(k) for k in ("step", "tokens", "loss_max", "loss_min", "loss_random",
                                                   "val_loss_max", "val_loss_min", "tokens_per_s", "mfu")
                             if r.get(k) is not None} for r in curve],
            "corpus_manifest": {"path": str(man), "sha256": hashlib.sha256(man.read_bytes()).hexdigest()}
            if man.exists() else None,
            "noise": {str(p): noise_report(rows, space) for p, rows in results.items() if rows}}
    budgets = sorted({r.get("budget_tokens") for rows in results.values() for r in rows} - {None})
    prov["eval_budget_tokens"] = budgets[0] if len(budgets) == 1 else None
    prov["runs"] = [{"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "git_commit": git_commit(), "command": command or " ".join(sys.argv),
                     "versions": library_versions(), "host": platform.node(), "built_from": str(res)}]
    alone = [json.loads((Path(d) / "state.json").read_text()) for d in standalone_runs]
    prov["standalone_training"] = [{"arch_id": st["config"]["supernet"], "step": st["step"],
                                    "steps": st["config"]["steps"], "tokens_seen": st["tokens_seen"],
                                    "train_seconds": st["train_seconds"], "device": st.get("device")}
                                   for st in alone if st.get("tokens_seen") and st.get("train_seconds")]
    return perplexity_table(space, results, prov)
