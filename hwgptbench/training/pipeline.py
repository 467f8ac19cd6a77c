"""The xs benchmark, regenerated end to end on CPUs (benchmarks.md, "The xs space"; README,
"Regenerate the xs benchmark"). One recipe, stages that each resume after a kill:

    corpus      GPT-2's BPE restricted to 8192 ranks, derived from the GPT-2 corpus
    train       the supernet (sandwich rule), seed 0: ~2.4 h on one core
    standalone  the validity architectures, each trained alone on the same batches and schedule
    score       perplexity of the profiling set: 1000 architectures at 100%, 300 at 25/50/75%
                (a second seed: 300 at each fidelity asked)
    table       data/xs/perplexity.h5 (four fidelities, noise report, training provenance)
    validity    rank agreement of the supernet with standalone training (and with a second seed)

CPU latency and decode tables are measured with `hwgptbench profile` on a quiet core (protocol 2),
surrogates with `hwgptbench fit-surrogates`: those stages have their own commands.

A rehearsal runs the same code at tiny counts on a tiny corpus into a scratch folder; everything it
writes carries ``"rehearsal": true`` in its provenance, and the table stage refuses to write a
rehearsal into the package's data.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .sandwich import TrainConfig

__all__ = ["Recipe", "XS", "XS_REHEARSAL", "STAGES", "FIDELITIES", "run_stage", "supernet_dir", "standalone_dir"]

STAGES = ("corpus", "train", "standalone", "score", "table", "validity")
FIDELITIES = (25, 50, 75, 100)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything a regeneration of a CPU-trained space fixes in advance."""

    training: TrainConfig
    n_full: int = 1000               # profiling-set architectures scored at 100%
    n_partial: int = 300             # ... and at every other fidelity
    budget_tokens: int = 32768       # test tokens per architecture (128 windows of 256)
    eval_batch: int = 16
    n_standalone: int = 8            # validity architectures trained alone
    second_seed_steps: int | None = 2000   # the second supernet's (shorter) run; None: same steps
    rehearsal: bool = False


XS = Recipe(TrainConfig(space="xs", steps=4000, batch=8, lr=1e-3, min_lr=1e-4, warmup=200, eval_every=250,
                        eval_batches=16, bf16=True))
XS_REHEARSAL = Recipe(TrainConfig(space="xs", steps=8, batch=2, seq=32, lr=5e-3, min_lr=5e-4, warmup=2,
                                  eval_every=4, eval_batches=1, bf16=True),
                      n_full=40, n_partial=34, budget_tokens=64, eval_batch=2, n_standalone=3,
                      second_seed_steps=4, rehearsal=True)


def supernet_dir(work, seed: int = 0) -> Path:
    return Path(work) / f"supernet_seed{seed}"


def standalone_dir(work, arch_id: str) -> Path:
    return Path(work) / "standalone" / arch_id


def _training(recipe: Recipe, seed: int, **kw) -> TrainConfig:
    cfg = dataclasses.replace(recipe.training, seed=seed, **kw)
    if seed != recipe.training.seed and recipe.second_seed_steps and "supernet" not in kw:
        cfg = dataclasses.replace(cfg, steps=recipe.second_seed_steps,
                                  warmup=min(cfg.warmup, recipe.second_seed_steps - 1))
    return cfg


def run_stage(stage: str, recipe: Recipe, work, corpus, data_dir=None, seed: int = 0, threads: int | None = 1,
              max_seconds: float | None = None, log=print, fidelities=FIDELITIES, arch: str | None = None,
              command: str | None = None) -> dict:
    """Run (or resume) one stage; returns a small JSON-able summary. `corpus`: the space's corpus
    folder (for 'corpus': where it is derived to, from the GPT-2 corpus next to it). `fidelities`:
    the score stage's fidelities (two processes can score disjoint ones on two cores); `arch`: the
    standalone stage trains only that validity architecture (two cores can train two; each run
    folder has one trainer at a time); `command`: what the table's provenance names as its build."""
    from ..space import get_space
    if stage not in STAGES:
        raise ValueError(f"stage: {stage!r} not allowed; allowed: {list(STAGES)}")
    sp = get_space(recipe.training.space)
    work, corpus = Path(work), Path(corpus)
    if stage == "corpus":
        from .corpus import derive_corpus
        if (corpus / "manifest.json").exists():
            return {"corpus": str(corpus), "built": False}
        derive_corpus(corpus.parent / "gpt2", corpus, sp.tokenizer_ranks, log=log)
        return {"corpus": str(corpus), "built": True}
    if stage == "train":
        from .supernet import train
        st = train(corpus, supernet_dir(work, seed), _training(recipe, seed), device="cpu", threads=threads,
                   max_seconds=max_seconds, log=log)
        return {"step": st["step"], "steps": st["config"]["steps"], "tokens_seen": st["tokens_seen"]}
    if stage == "standalone":
        from .supernet import train
        from .validity import standalone_archs
        done = {}
        archs = standalone_archs(sp.name, recipe.n_standalone, recipe.n_partial)
        if arch is not None:
            if arch not in [a.id for a in archs]:
                raise ValueError(f"arch: {arch!r} is not a validity architecture; allowed: {[a.id for a in archs]}")
            archs = [a for a in archs if a.id == arch]
        for a in archs:
            st = train(corpus, standalone_dir(work, a.id), _training(recipe, seed, sandwich=1, supernet=a.id),
                       device="cpu", threads=threads, max_seconds=max_seconds, log=log)
            done[a.id] = st["step"] == st["config"]["steps"]
            if not done[a.id]:
                break
        return {"finished": done}
    if stage == "score":
        bad = sorted(set(fidelities) - set(FIDELITIES))
        if bad or not fidelities:
            raise ValueError(f"fidelities: {list(fidelities)} not allowed; allowed: a non-empty subset of {list(FIDELITIES)}")
        return _score(recipe, work, corpus, seed, threads, max_seconds, log, fidelities)
    if stage == "table":
        return _table(recipe, work, corpus, data_dir, seed, command)
    return _validity(recipe, work)


def _standalone_runs(work) -> list[Path]:
    """The standalone networks' run folders that hold a state (one whose training has only just
    begun has none yet)."""
    return sorted(d for d in (Path(work) / "standalone").glob("*") if (d / "state.json").exists())


def _score(recipe, work, corpus, seed, threads, max_seconds, log, fidelities) -> dict:
    """Score the profiling set at the fidelities asked (100% first), then the standalone networks.
    A second seed scores n_partial architectures at every fidelity: rank agreement needs a few
    hundred, not the full set, and each costs as much as the first run's."""
    from .evaluate import evaluate_profiling_set, read_results, results_path
    run = supernet_dir(work, seed)
    out = {}
    for pct in sorted(fidelities, key=lambda p: -p if p == 100 else p):
        n = recipe.n_full if pct == 100 and seed == recipe.training.seed else recipe.n_partial
        path = evaluate_profiling_set(corpus, run, pct, n=n, budget_tokens=recipe.budget_tokens,
                                      batch=recipe.eval_batch, device="cpu", max_seconds=max_seconds,
                                      threads=threads, log=log)
        out[str(pct)] = len(read_results(path))
    for d in _standalone_runs(work) if seed == recipe.training.seed else ():
        st = json.loads((d / "state.json").read_text())
        if st["step"] == st["config"]["steps"]:
            for pct in FIDELITIES:
                evaluate_profiling_set(corpus, d, pct, n=recipe.n_partial, budget_tokens=recipe.budget_tokens,
                                       batch=recipe.eval_batch, device="cpu", threads=threads, log=log)
            out[d.name] = len(read_results(results_path(d, recipe.training.space, 100)))
    return {"scored": out}


def _table(recipe, work, corpus, data_dir, seed, command=None) -> dict:
    from ..paths import is_shipped_data
    from ..tables import write_table
    from .evaluate import build_perplexity_table
    if data_dir is None:
        raise ValueError("data_dir: name the folder the perplexity table goes into (e.g. data)")
    data_dir = Path(data_dir)
    if recipe.rehearsal and is_shipped_data(data_dir):
        raise ValueError(f"data_dir: {str(data_dir)!r} is the package's data; a rehearsal writes into a "
                         "scratch folder only")
    table = build_perplexity_table(supernet_dir(work, seed), recipe.training.space, Path(corpus) / "manifest.json",
                                   standalone_runs=_standalone_runs(work) if seed == recipe.training.seed else (),
                                   command=command)
    if recipe.rehearsal:
        table = dataclasses.replace(table, provenance={**table.provenance, "rehearsal": True})
    path = data_dir / recipe.training.space / "perplexity.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, path)
    return {"table": str(path), "rows": len(table)}


def _validity(recipe, work) -> dict:
    """Kendall tau of the supernet's perplexity against standalone networks (per fidelity) and
    against a second supernet seed, on the architectures both scored."""
    from .evaluate import read_results, results_path
    from ..space import as_arch
    from .validity import pairs_in_order, rank_agreement, split_half_agreement
    space = recipe.training.space

    def ppl(run, pct):
        return {r["arch_id"]: r["perplexity"] for r in read_results(results_path(run, space, pct))}

    first = supernet_dir(work, recipe.training.seed)
    alone = {}
    for d in _standalone_runs(work):
        alone.update(ppl(d, 100))
    final = read_results(results_path(first, space, 100))
    report = {"standalone": {str(p): rank_agreement(ppl(first, p), alone) for p in FIDELITIES},
              "standalone_within_width": {str(p): pairs_in_order(ppl(first, p), alone,
                                                                 lambda a: as_arch(a, space).embed_dim)
                                          for p in FIDELITIES},
              "standalone_ppl": alone,
              "standalone_supernet_ppl": {r["arch_id"]: r["perplexity"] for r in final if r["arch_id"] in alone}}
    seeds = sorted(Path(work).glob("supernet_seed*"))
    if len(seeds) > 1:
        second = seeds[1] if seeds[0] == first else seeds[0]
        other = read_results(results_path(second, space, 100))
        width = {r["arch_id"]: as_arch(r["arch_id"], space).embed_dim for r in other}
        report["second_seed"] = {
            "run": second.name, **{str(p): rank_agreement(ppl(first, p), ppl(second, p)) for p in FIDELITIES},
            # its final network against the first run's at each fidelity, on halves of the windows, per width
            "final_vs_first_at": {str(p): rank_agreement(ppl(first, p), ppl(second, 100)) for p in FIDELITIES},
            "final_split_half": split_half_agreement(other, final),
            "final_split_half_by_embed_dim": {
                str(e): split_half_agreement([r for r in other if width[r["arch_id"]] == e], final)
                for e in sorted(set(width.values()))}}
    report["fidelity_vs_final"] = {str(p): split_half_agreement(read_results(results_path(first, space, p)), final)
                                   for p in FIDELITIES[:-1]}
    report["last_two_fidelities"] = report["fidelity_vs_final"][str(FIDELITIES[-2])]
    path = Path(work) / "validity.json"
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return report
