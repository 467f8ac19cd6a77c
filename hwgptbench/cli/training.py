"""`hwgptbench corpus | train | evaluate | perplexity-table`: build the corpus, train the supernet,
score sub-networks, and write the perplexity table. torch is imported only when a command needs it."""
from __future__ import annotations

import json
from pathlib import Path

from ..space import SPACES
from .options import command_line, count, folder, names, positive, renamed, require, table_path

_TORCH_DEVICE = dict(default=None, help="torch device, e.g. cuda, cuda:1, cpu (default: cuda if available, else cpu)")
_NOT_A_NAME = "--device names a table's device (profile, gpu-plan), not a torch device"


def add_corpus(c) -> None:
    c.add_argument("--out", default="corpus_cache/gpt2", help="output folder (token files + manifest.json)")
    c.add_argument("--cache", default="corpus_cache", help="folder where packages are downloaded and unpacked")
    c.add_argument("--text", action="append", default=[],
                   help="also use your own text file or folder (repeatable; default: none)")
    c.add_argument("--only-text", action="store_true", help="use only --text sources, no packages")
    c.add_argument("--seed", type=count(0), default=0, help="seed of the split into train/val/test")
    c.add_argument("--val-frac", type=float, default=0.04, help="validation share of the documents")
    c.add_argument("--test-frac", type=float, default=0.04, help="test share of the documents")
    c.add_argument("--threads", type=count(1), default=1, help="tokeniser threads")
    c.add_argument("--ranks", type=count(256), default=None,
                   help="derive a corpus tokenised with GPT-2's BPE restricted to its first RANKS ranks from "
                        "the GPT-2 corpus in --from (space xs reads --ranks 8192; default: build from packages)")
    c.add_argument("--from", dest="source", type=folder, default=None,
                   help="with --ranks: the GPT-2 corpus to derive from (default: corpus_cache/gpt2)")
    c.add_argument("--manifest-copy", default=None,
                   help="also copy manifest.json into this folder, e.g. data/corpus/ (default: no copy)")
    c.set_defaults(func=cmd_corpus)


def add_train(t) -> None:
    t.add_argument("--space", default="s", choices=sorted(SPACES), help="search space")
    t.add_argument("--corpus", type=folder, default=None,
                   help="corpus folder (`hwgptbench corpus`; default: corpus_cache/gpt2, or corpus_cache/gpt2_8192 for xs)")
    t.add_argument("--run-dir", required=True, help="folder of checkpoints and logs (resumed if present)")
    t.add_argument("--steps", default="1000", help="planned optimizer steps, or 'auto' with --auto-seconds")
    t.add_argument("--auto-seconds", type=positive, default=None,
                   help="with --steps auto: training time to plan for (default: none)")
    t.add_argument("--batch", type=count(1), default=16, help="sequences per step")
    t.add_argument("--seq", type=count(1), default=None, help="sequence length (default: the space's context)")
    t.add_argument("--sandwich", type=count(1), default=4,
                   help="sub-networks per step (largest, smallest, random); 1 trains --supernet alone (standalone)")
    t.add_argument("--lr", type=positive, default=6e-4, help="peak learning rate")
    t.add_argument("--min-lr", type=float, default=6e-5, help="final learning rate of the cosine schedule")
    t.add_argument("--warmup", type=count(0), default=100, help="warm-up steps")
    t.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay")
    t.add_argument("--grad-clip", type=positive, default=1.0, help="gradient-norm clip")
    t.add_argument("--seed", type=count(0), default=0, help="random seed")
    t.add_argument("--eval-every", type=count(1), default=100, help="steps between validation losses")
    t.add_argument("--eval-batches", type=count(1), default=8, help="batches per validation loss")
    t.add_argument("--supernet", default=None,
                   help="arch id of a smaller supernet (default: the space's largest)")
    t.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU too (CUDA always uses it)")
    t.add_argument("--threads", type=count(1), default=None, help="torch threads (default: torch's choice)")
    t.add_argument("--torch-device", **_TORCH_DEVICE)
    renamed(t, "--device", "--torch-device", _NOT_A_NAME)
    t.add_argument("--max-seconds", type=positive, default=None,
                   help="stop (with a checkpoint) after this long (default: no limit)")
    t.add_argument("--out", default=None, help="folder to copy small result files into, e.g. $OUT (default: none)")
    t.set_defaults(func=cmd_train)


def add_evaluate(e) -> None:
    e.add_argument("--corpus", type=folder, default=None,
                   help="corpus folder (default: the one the run's space reads, as for train)")
    e.add_argument("--run-dir", type=folder, required=True, help="the training's folder (`hwgptbench train`)")
    e.add_argument("--percent", type=int, default=100, choices=(25, 50, 75, 100),
                   help="fidelity snapshot: percent of the training")
    e.add_argument("-n", type=count(1), default=2000, help="evaluate profiling-set positions [start, n)")
    e.add_argument("--start", type=count(0), default=0, help="first profiling-set position")
    e.add_argument("--budget-tokens", type=count(1), default=None,
                   help="test tokens per architecture (default: 65536)")
    e.add_argument("--batch", type=count(1), default=16, help="sequences per forward")
    e.add_argument("--threads", type=count(1), default=None, help="torch threads (default: torch's choice)")
    e.add_argument("--torch-device", **_TORCH_DEVICE)
    renamed(e, "--device", "--torch-device", _NOT_A_NAME)
    e.add_argument("--max-seconds", type=positive, default=None, help="stop cleanly after this long (default: no limit)")
    e.add_argument("--out", default=None, help="folder to copy the result files into, e.g. $OUT (default: none)")
    e.set_defaults(func=cmd_evaluate)


def add_perplexity_table(p) -> None:
    p.add_argument("--space", default="s", choices=sorted(SPACES), help="search space")
    p.add_argument("--results", type=folder, required=True,
                   help="folder with eval_{space}_f{p}.jsonl, state.json, train_log.jsonl")
    p.add_argument("--table", type=table_path, required=True, help="the table's path, e.g. data/s/perplexity.h5")
    renamed(p, "--out", "--table", "perplexity-table writes one table, named by --table (--out names folders)")
    p.add_argument("--corpus-manifest", default="data/corpus/manifest.json",
                   help="the corpus' manifest.json, recorded (sha256) in the table")
    p.set_defaults(func=cmd_table)


def add_xs_pipeline(x) -> None:
    from ..training.pipeline import STAGES
    x.add_argument("stage", choices=STAGES, help="the stage to run or resume")
    x.add_argument("--work", required=True, help="folder of the runs (supernet_seed*/, standalone/, validity.json)")
    x.add_argument("--corpus", default=None,
                   help="the xs corpus folder (default: corpus_cache/gpt2_8192, derived from corpus_cache/gpt2)")
    x.add_argument("--data-dir", default=None, help="table stage: the tables' folder, named explicitly, e.g. data (default: none; the table stage needs it)")
    x.add_argument("--seed", type=count(0), default=0,
                   help="train/score/table: the supernet's seed; a second seed trains a shorter run (default: %(default)s)")
    x.add_argument("--threads", type=count(1), default=1, help="torch threads (default: %(default)s)")
    x.add_argument("--fidelities", type=names, default=None,
                   help="score stage: comma-separated fidelities, e.g. 100 on one core and 25,50,75 on the other "
                        "(default: all four)")
    x.add_argument("--arch", default=None,
                   help="standalone stage: train only this validity architecture (an id), e.g. the last one on "
                        "the other core (default: all, in order)")
    x.add_argument("--max-seconds", type=positive, default=None, help="stop cleanly after this long per run (default: no limit)")
    x.add_argument("--rehearsal", action="store_true",
                   help="tiny counts on a tiny corpus made from this package's files, into scratch folders")
    x.set_defaults(func=cmd_xs_pipeline)


PARSERS = {"corpus": add_corpus, "train": add_train, "evaluate": add_evaluate,
           "perplexity-table": add_perplexity_table, "xs-pipeline": add_xs_pipeline}


def cmd_corpus(args) -> int:
    import shutil

    require("tiktoken")
    from ..training.corpus import DEFAULT_SOURCES, Source, build_corpus, derive_corpus

    if args.ranks is not None:
        if args.text or args.only_text:
            raise ValueError("--ranks: derives from --from's corpus; --text/--only-text do not apply")
        from ..training.supernet import corpus_dir_for
        out = args.out if args.out != corpus_dir_for(None) else corpus_dir_for(args.ranks)
        source = args.source or folder_or_error(corpus_dir_for(None), "--from")
        man = derive_corpus(source, out, args.ranks, threads=args.threads)
        print(json.dumps({k: man["splits"][k]["tokens"] for k in man["splits"]}))
        return 0
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
    require("torch")
    from ..training.supernet import TrainConfig, train

    auto = args.steps == "auto"
    if auto and args.auto_seconds is None:
        raise ValueError("--steps: 'auto' needs --auto-seconds")
    try:
        steps = 1_000_000 if auto else int(args.steps)
    except ValueError:
        raise ValueError(f"--steps: expected an integer >= 1 or 'auto', got {args.steps!r}") from None
    cfg = TrainConfig(space=args.space, steps=steps, batch=args.batch, seq=args.seq, sandwich=args.sandwich,
                      lr=args.lr, min_lr=args.min_lr, warmup=args.warmup, weight_decay=args.weight_decay,
                      grad_clip=args.grad_clip, seed=args.seed, eval_every=args.eval_every,
                      eval_batches=args.eval_batches, supernet=args.supernet, bf16=True if args.bf16 else None)
    state = train(_corpus(args.corpus, args.space), args.run_dir, cfg, device=args.torch_device,
                  max_seconds=args.max_seconds, out_dir=args.out,
                  steps_auto_seconds=args.auto_seconds if auto else None, threads=args.threads)
    print(json.dumps({k: state[k] for k in ("step", "tokens_seen", "train_seconds", "snapshots")}))
    return 0


def folder_or_error(path: str, option: str) -> str:
    """A default folder an option stands for, checked when it is used (argparse would check a
    default even where the option does not apply)."""
    if not Path(path).is_dir():
        raise ValueError(f"{option}: not given, and its default {path!r} is not a folder; build the GPT-2 corpus "
                         "first (`hwgptbench corpus`, or scripts/build_corpus.sh)")
    return path


def _corpus(given, space) -> str:
    """--corpus, or the folder `hwgptbench corpus` makes for the space's tokenizer (checked here, so
    that a missing default is an error about --corpus)."""
    from ..space import get_space
    from ..training.supernet import default_corpus_dir
    if given is not None:
        return given
    path, ranks = default_corpus_dir(space), get_space(space).tokenizer_ranks
    if not (Path(path) / "manifest.json").is_file():
        how = "`hwgptbench corpus`" + ("" if ranks is None else f", then `hwgptbench corpus --ranks {ranks}`")
        raise ValueError(f"--corpus: not given, and space {space!r}'s default corpus {path!r} is not built; "
                         f"build it with {how}")
    return path


def cmd_evaluate(args) -> int:
    import shutil

    require("torch")
    from ..training.evaluate import DEFAULT_BUDGET_TOKENS, evaluate_profiling_set

    out = evaluate_profiling_set(args.corpus, args.run_dir, args.percent, n=args.n, start=args.start,
                                 budget_tokens=args.budget_tokens or DEFAULT_BUDGET_TOKENS, batch=args.batch,
                                 device=args.torch_device, max_seconds=args.max_seconds, threads=args.threads)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        shutil.copy2(out, Path(args.out) / out.name)
    print(out)
    return 0


def cmd_table(args) -> int:
    from ..training.evaluate import build_perplexity_table
    from ..tables import write_table

    command = command_line(args)
    write_table(build_perplexity_table(args.results, args.space, args.corpus_manifest, command=command), args.table)
    print(args.table)
    return 0


def cmd_xs_pipeline(args) -> int:
    require("torch", "tiktoken")
    from ..training.pipeline import FIDELITIES, XS, XS_REHEARSAL, run_stage

    from ..training.supernet import default_corpus_dir

    recipe = XS_REHEARSAL if args.rehearsal else XS
    corpus = args.corpus
    if args.rehearsal:
        if corpus is not None:
            raise ValueError("--corpus: a rehearsal makes its own tiny corpus in --work")
        corpus = _rehearsal_corpus(Path(args.work), recipe.training.space)
    corpus = corpus or default_corpus_dir(recipe.training.space)
    fids = FIDELITIES
    if args.fidelities is not None:
        try:
            fids = tuple(int(f) for f in args.fidelities)
        except ValueError:
            raise ValueError(f"--fidelities: expected integers among {list(FIDELITIES)}, got {args.fidelities}") from None
    if args.arch is not None and args.stage != "standalone":
        raise ValueError(f"--arch: picks a standalone network; it does not apply to stage {args.stage!r}")
    out = run_stage(args.stage, recipe, args.work, corpus, data_dir=args.data_dir, seed=args.seed,
                    threads=args.threads, max_seconds=args.max_seconds, fidelities=fids, arch=args.arch,
                    command=command_line(args))
    print(json.dumps(out, sort_keys=True))
    return 0


def _rehearsal_corpus(work: Path, space: str) -> Path:
    """gpu-plan's tiny corpus (this package's own files) and its derivation for the space's
    tokenizer, in `work`."""
    from ..gpu_plan.rehearsal import tiny_corpus
    from ..space import get_space
    from ..training.corpus import derive_corpus
    ranks = get_space(space).tokenizer_ranks
    small = work / "corpus" / f"gpt2_{ranks}"
    if not (small / "manifest.json").exists():
        derive_corpus(tiny_corpus(work / "corpus" / "gpt2"), small, ranks, log=lambda *a: None)
    return small
