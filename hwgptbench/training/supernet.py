"""Weight-sharing supernet training (docs/PROTOCOLS.md section 6) over the one model in `model.py`.

The supernet is ``GPT(space.largest())``; a sub-network is selected with ``set_sub_network`` and
uses leading slices of the same tensors, so every gradient step on a sub-network trains the
shared weights. Each optimizer step follows the **sandwich rule**: the largest, the smallest and
``sandwich - 2`` uniformly random sub-networks see the same batch and their mean loss is
back-propagated. AdamW, linear warm-up then cosine decay to ``min_lr``, bf16 autocast on CUDA,
gradient-norm clipping.

Runs are made to live inside short device calls: ``train(..., max_seconds=...)`` stops cleanly,
writes an atomic checkpoint, and the same command resumes it. Everything random (batches,
sampled sub-networks) is a function of (seed, step), so a resumed run is the run that never
stopped. The total number of steps is fixed when the run starts (so the cosine schedule and the
fidelity snapshots at 25/50/75/100% of training are well defined); ``steps="auto"`` measures the
step time first and fits the run into a given time budget.

The trainer runs eager: torch.compile of the blocks (dynamic=True, even with int attributes of
modules left unspecialised) recompiled for every new per-layer configuration on CPU (16 graphs
after 6 sub-networks, 8-33 s each), so random sub-networks never reach a compiled steady state.

Checkpoints hold only tensors and numbers (``torch.save``; read back with ``weights_only=True``)
plus a JSON sidecar; they stay on the machine that trained them and are never shipped.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from pathlib import Path

import numpy as np

from .. import cost
from ..files import WriterLock, replacing, write_bytes
from .sandwich import (PEAK_BF16, TrainConfig, config_of_state, fits, monitored_archs, peak_flops, sample_batch,  # noqa: F401
                       sample_sub_networks, step_archs)
from ..space import get_space

__all__ = ["TrainConfig", "train", "load_supernet", "sample_batch", "snapshot_path", "peak_flops", "autocast", "torch_device_name",
           "check_corpus", "default_corpus_dir", "corpus_dir_for"]

def snapshot_path(run_dir, percent: int) -> Path:
    return Path(run_dir) / f"snapshot_f{percent}.pt"


def _atomic_save(obj, path: Path) -> None:
    import torch
    with replacing(path) as tmp:
        torch.save(obj, tmp)


def _atomic_json(obj, path: Path) -> None:
    write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def build_model(cfg: TrainConfig, device):
    """The supernet (fp32 master weights), seeded initialisation."""
    import torch

    from ..model import GPT

    model = GPT(cfg.supernet_arch(), device=device, dtype=torch.float32, init=False)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    model.init_weights(generator=gen)
    return model


def _optimizer(model, cfg: TrainConfig, device):
    import torch
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    kw = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **kw)


def _loss(model, x, y):
    import torch.nn.functional as F
    logits = model(x)
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))


def validation_loss(model, tokens, cfg: TrainConfig, device, archs) -> list[float]:
    """Mean loss of each arch on cfg.eval_batches fixed val windows (the same ones every time)."""
    import torch
    rng = np.random.default_rng([cfg.seed, 7])
    batches = [sample_batch(tokens, cfg.batch, cfg.seq, rng) for _ in range(cfg.eval_batches)]
    out = []
    was_training = model.training
    model.eval()
    with torch.inference_mode(), autocast(device, cfg.bf16):
        for a in archs:
            model.set_sub_network(a)
            tot = 0.0
            for x, y in batches:
                tot += float(_loss(model, torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)))
            out.append(tot / len(batches))
    model.train(was_training)
    return out


def autocast(device, bf16: bool | None = None):
    """bf16 autocast where asked (`bf16` None: on CUDA only), else no autocast (fp32)."""
    import contextlib

    import torch
    if bf16 or (bf16 is None and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def torch_device_name(device) -> str:
    """The hardware a run trained or scored on: the GPU's name, or the CPU's model, family and
    model numbers and core count (the identity CPU device names are made from)."""
    import torch

    from ..profiling.devices import cpu_info, describe_identity
    return torch.cuda.get_device_name(device) if device.type == "cuda" else describe_identity(cpu_info()["identity"])


def train(corpus_dir, run_dir, cfg: TrainConfig | None = None, device=None, max_seconds: float | None = None,
          out_dir=None, log=print, steps_auto_seconds: float | None = None, max_steps: int | None = None,
          checkpoint_every_s: float = 180.0, threads: int | None = None) -> dict:
    """Train (or resume) the supernet in run_dir; return the run state (JSON-able).

    Stops after cfg.steps steps or after max_seconds, whichever is first, with a checkpoint either
    way (`max_steps` stops after that many steps of this call). With `steps_auto_seconds` a new run
    first times a few steps and sets cfg.steps so that
    training fits that many seconds. A checkpoint is also written every `checkpoint_every_s`, so a
    killed call loses at most that much. Small result files (log, state) are copied to out_dir.
    `threads`: torch's intra-op threads for this call (default: torch's own choice). One process
    trains a run folder at a time: a second one gets `LockedError` (two writers of one checkpoint
    would corrupt it).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with WriterLock(run_dir / "state.json"):
        return _train(corpus_dir, run_dir, cfg, device, max_seconds, out_dir, log, steps_auto_seconds, max_steps,
                      checkpoint_every_s, threads)


def _train(corpus_dir, run_dir, cfg, device, max_seconds, out_dir, log, steps_auto_seconds, max_steps,
           checkpoint_every_s, threads) -> dict:
    """`train`, under its run folder's lock."""
    import torch

    from .corpus import load_split, manifest_hash

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    state_path, ckpt_path, log_path = run_dir / "state.json", run_dir / "checkpoint.pt", run_dir / "train_log.jsonl"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        saved = config_of_state(state)
        if cfg is not None and dataclasses.replace(cfg, steps=saved.steps) != dataclasses.replace(saved):
            raise ValueError(f"config: {str(run_dir)!r} holds a run with another config {state['config']}; "
                             "use a new run_dir")
        cfg = saved
    else:
        cfg = cfg or TrainConfig()
        state = None
        if log_path.exists():           # a first call killed before its checkpoint: start afresh
            log_path.unlink()
    cfg.check()
    check_corpus(corpus_dir, cfg.space)
    if threads is not None:
        torch.set_num_threads(threads)
    train_tokens, val_tokens = load_split(corpus_dir, "train"), load_split(corpus_dir, "val")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    model = build_model(cfg, device)
    opt = _optimizer(model, cfg, device)
    if state is not None and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["step"])
        if step != state["step"]:
            raise ValueError(f"checkpoint: step {step} disagrees with state.json step {state['step']}")
    else:
        step = 0
        state = {"config": dataclasses.asdict(cfg), "step": 0, "tokens_seen": 0, "train_seconds": 0.0,
                 "corpus_manifest_sha256": manifest_hash(corpus_dir), "device": torch_device_name(device),
                 "torch": torch.__version__, "snapshots": {}, "calls": [],
                 # names this run: perplexities of two runs (two supernets) never share a table
                 "run_id": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]}
    model.train()
    sp = get_space(cfg.space)
    peak = peak_flops(torch_device_name(device)) if device.type == "cuda" else float("nan")
    t_call = time.time()

    def one_step(s):
        rng = np.random.default_rng([cfg.seed, s, 1])
        x, y = sample_batch(train_tokens, cfg.batch, cfg.seq, rng)
        x, y = torch.from_numpy(x).to(device, non_blocking=True), torch.from_numpy(y).to(device, non_blocking=True)
        lr = cfg.lr_at(s)
        for g in opt.param_groups:
            g["lr"] = lr
        losses = []
        for a in step_archs(cfg, s):
            model.set_sub_network(a)
            with autocast(device, cfg.bf16):
                loss = _loss(model, x, y)
            (loss / cfg.sandwich).backward()
            losses.append(loss.detach())
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return lr, torch.stack(losses), gnorm

    if steps_auto_seconds is not None and step == 0 and not log_path.exists():
        # time 3 + 5 steps on a throw-away copy of the optimizer state: the real run starts from step 0
        init = {k: v.clone() for k, v in model.state_dict().items()}
        for s in range(8):
            if s == 3:
                _sync(device)
                t0 = time.time()
            one_step(s)
        _sync(device)
        per_step = (time.time() - t0) / 5
        model.load_state_dict(init)
        opt = _optimizer(model, cfg, device)
        n = max(cfg.warmup + 1, int(steps_auto_seconds / per_step))
        cfg = dataclasses.replace(cfg, steps=n)
        cfg.check()
        state["config"] = dataclasses.asdict(cfg)
        state["auto_steps"] = {"seconds": steps_auto_seconds, "measured_step_s": per_step}
        log(f"train: {per_step:.3f} s/step measured; planning {n} steps for {steps_auto_seconds:.0f} s")

    snap = cfg.snapshot_steps()
    call = {"started_step": step, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "device": torch_device_name(device), "threads": torch.get_num_threads()}
    t_ckpt = time.time()
    t_window, flops_window, tokens_window = time.time(), 0.0, 0
    with open(log_path, "a") as logf:
        if step == 0:
            vl = validation_loss(model, val_tokens, cfg, device, monitored_archs(cfg)) + [None]
            logf.write(json.dumps({"step": 0, "tokens": 0, "val_loss_max": vl[0], "val_loss_min": vl[1]}) + "\n")
        while step < cfg.steps:
            if max_seconds is not None and time.time() - t_call > max_seconds:
                break
            if max_steps is not None and step - call["started_step"] >= max_steps:
                break
            archs = step_archs(cfg, step)
            lr, losses, gnorm = one_step(step)
            step += 1
            state["tokens_seen"] += cfg.batch * cfg.seq
            # exact training FLOPs of this step: 3x the forward FLOPs of each sub-network
            flops_window += 3 * float(sum(cost.flops(sp.encode(archs), sp.name, cfg.batch, cfg.seq)))
            tokens_window += cfg.batch * cfg.seq
            if step % 10 == 0 or step == cfg.steps or step % cfg.eval_every == 0:
                _sync(device)
                dt = time.time() - t_window
                ls = losses.float().cpu().numpy()
                row = {"step": step, "tokens": state["tokens_seen"], "lr": lr, "loss_max": float(ls[0]),
                       "loss_min": float(ls[1]) if len(ls) > 1 else None, "loss_random": float(ls[2:].mean()) if len(ls) > 2 else None,
                       "grad_norm": float(gnorm), "tokens_per_s": tokens_window / dt,
                       "subnet_tokens_per_s": tokens_window * cfg.sandwich / dt,
                       "model_flops_per_s": flops_window / dt, "mfu": flops_window / dt / peak,
                       "time": time.time()}
                logf.write(json.dumps(row) + "\n")
                logf.flush()
                state["train_seconds"] += dt
                t_window, flops_window, tokens_window = time.time(), 0.0, 0
            if step % cfg.eval_every == 0 or step == cfg.steps:
                vl = validation_loss(model, val_tokens, cfg, device, monitored_archs(cfg)) + [None]
                logf.write(json.dumps({"step": step, "tokens": state["tokens_seen"], "val_loss_max": vl[0],
                                       "val_loss_min": vl[1]}) + "\n")
                logf.flush()
                log(f"train: step {step}/{cfg.steps} " + _pair("loss", row["loss_max"], row["loss_min"]) + " "
                    + _pair("val", vl[0], vl[1]) + f" {row['tokens_per_s']:.0f} tok/s "
                    + (f"mfu {row['mfu']:.3f}" if math.isfinite(row["mfu"]) else    # no known peak (CPU)
                       f"{row['model_flops_per_s']:.3g} FLOP/s"))
            if time.time() - t_ckpt > checkpoint_every_s and step < cfg.steps:
                _checkpoint(model, opt, step, state, ckpt_path, state_path)
                t_ckpt = time.time()
            for pct, s in snap.items():
                if step == s:
                    _atomic_save({"model": model.state_dict(), "step": step}, snapshot_path(run_dir, pct))
                    state["snapshots"][str(pct)] = {"step": step, "tokens_seen": state["tokens_seen"]}
    call.update(ended_step=step, seconds=time.time() - t_call)
    state["calls"].append(call)
    _checkpoint(model, opt, step, state, ckpt_path, state_path)
    if out_dir is not None:
        _copy_small(run_dir, out_dir)
    return state


def _pair(name: str, largest, smallest) -> str:
    """'loss max/min 3.1/3.5' for a supernet (largest and smallest network); 'loss 3.1' for a
    network trained alone, which has no smallest."""
    return f"{name} {largest:.3f}" if smallest is None else f"{name} max/min {largest:.3f}/{smallest:.3f}"


def check_corpus(corpus_dir, space) -> None:
    """Refuse a corpus whose tokenizer is not the space's (its ids would index another vocabulary)."""
    from .corpus import read_manifest
    sp = get_space(space)
    tok = read_manifest(corpus_dir)["tokenizer"]
    if tok.get("n_ranks") != sp.tokenizer_ranks or tok["eot"] + 1 != sp.vocab_size:
        want = "GPT-2's full BPE" if sp.tokenizer_ranks is None else f"GPT-2's BPE restricted to {sp.tokenizer_ranks} ranks"
        raise ValueError(f"corpus: {str(corpus_dir)!r} is tokenised with {tok['name']!r}; space {sp.name!r} reads "
                         f"{want} ({sp.vocab_size} ids): use {default_corpus_dir(sp.name)!r} "
                         "(`hwgptbench corpus`, then `hwgptbench corpus --ranks N` for a restricted one)")


def corpus_dir_for(ranks: int | None) -> str:
    """Where `hwgptbench corpus` puts the GPT-2 corpus (`ranks` None) or its derivation restricted
    to `ranks` BPE ranks (`hwgptbench corpus --ranks`)."""
    return "corpus_cache/gpt2" if ranks is None else f"corpus_cache/gpt2_{ranks}"


def default_corpus_dir(space) -> str:
    """Where `hwgptbench corpus` puts the corpus a space reads."""
    return corpus_dir_for(get_space(space).tokenizer_ranks)


def _checkpoint(model, opt, step, state, ckpt_path, state_path) -> None:
    """Weights, optimizer and step, then state.json (which names the step the checkpoint holds)."""
    state["step"] = step
    _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, ckpt_path)
    _atomic_json(state, state_path)


def _sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _copy_small(run_dir, out_dir) -> None:
    """Copy the run's small files (JSON, JSONL) to out_dir (e.g. the device's $OUT)."""
    import shutil
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for p in Path(run_dir).iterdir():
        if p.suffix in (".json", ".jsonl"):
            shutil.copy2(p, out / p.name)


def load_supernet(run_dir, percent: int = 100, device=None):
    """The supernet with the weights of the fidelity snapshot `percent` (25, 50, 75 or 100)."""
    import torch
    run_dir = Path(run_dir)
    state = json.loads((run_dir / "state.json").read_text())
    path = snapshot_path(run_dir, percent)
    if not path.exists():
        have = sorted(int(k) for k in state.get("snapshots", {}))
        raise FileNotFoundError(f"percent: no snapshot at {percent}% in {str(run_dir)!r}; available: {have}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_model(config_of_state(state), device)
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True)["model"])
    model.eval()
    return model, state
