"""KV-cache decoding, its closed-form cost and its measurement, each against an independent truth:
the model's full (uncached) forward, torch's FlopCounterMode and tensor sizes, hand-computed cases,
and a fake clock that tells exactly which calls a timer spans."""
import types

import numpy as np
import pytest

from hwgptbench import cost, get_space

torch = pytest.importorskip("torch")
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from hwgptbench.model import GPT, KVCache  # noqa: E402
from hwgptbench.profiling import measure  # noqa: E402

T_PREFILL, G = 8, 4


def _narrowest(space, seed, n=50):
    """A random architecture of the space among those of the smallest embedding (fast to build)."""
    sp = get_space(space)
    return next(a for a in sp.sample(n, seed=seed) if a.embed_dim == min(sp.embed_dims))


def _model(arch, seed=0):
    torch.manual_seed(seed)
    return GPT(arch, device="cpu", dtype=torch.float32).eval()


def _check_cached_equals_full(model, batch=2, chunks=(T_PREFILL,) + (1,) * G, seed=0):
    """Feed the sequence in chunks through a cache; every position's logits must equal the full
    forward's (which sees the whole sequence at once, so its rotary positions are the truth)."""
    total = sum(chunks)
    idx = torch.randint(0, cost.VOCAB_SIZE, (batch, total), generator=torch.Generator().manual_seed(seed))
    cache = KVCache(model, batch, total)
    with torch.inference_mode():
        full = model(idx)
        parts, start = [], 0
        for n in chunks:
            parts.append(model(idx[:, start:start + n], cache))
            start += n
    assert cache.pos == total
    torch.testing.assert_close(torch.cat(parts, dim=1), full)


@pytest.mark.parametrize("space,seed", [("s", 1), ("s", 2), ("m", 3), ("l", 4)])
def test_cached_decoding_reproduces_full_forward(space, seed):
    arch = get_space(space).sample(1, seed=seed)[0] if space == "s" else _narrowest(space, seed)
    _check_cached_equals_full(_model(arch))


def test_cached_chunks_with_offset_mask():
    """A chunk of several tokens after the prefix needs the causal mask shifted by the prefix."""
    _check_cached_equals_full(_model(get_space("s").sample(1, seed=5)[0]), chunks=(5, 3, 1, 4))


@pytest.mark.slow
@pytest.mark.parametrize("space", ["m", "l"])
def test_cached_decoding_reproduces_full_forward_largest_and_random(space):
    sp = get_space(space)
    for a in [sp.largest()] + sp.sample(2, seed=6):
        _check_cached_equals_full(_model(a), batch=1)


def test_cache_of_supernet_sub_network():
    sp = get_space("s")
    supernet = _model(sp.largest())
    sub = sp.arch(384, 11, [2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3], [4, 8, 12, 8, 4, 12, 4, 8, 4, 12, 4], True)
    supernet.set_sub_network(sub)
    cache = KVCache(supernet, 2, T_PREFILL + G)
    assert [k.shape[1] for k in cache.k] == list(sub.n_head) and len(cache.v) == sub.n_layer
    _check_cached_equals_full(supernet)
    supernet.set_sub_network(sp.smallest())
    with pytest.raises(ValueError, match="cache: made for"):
        with torch.inference_mode():
            supernet(torch.zeros(2, 1, dtype=torch.long), cache)


def test_generate_is_greedy_decoding_of_the_full_forward():
    model = _model(get_space("s").sample(1, seed=7)[0])
    idx = torch.randint(0, cost.VOCAB_SIZE, (2, T_PREFILL), generator=torch.Generator().manual_seed(1))
    new = model.generate(idx, G)
    seq = idx
    with torch.inference_mode():
        for _ in range(G):     # the slow way: recompute the whole sequence for every token
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert new.shape == (2, G)
    torch.testing.assert_close(new, seq[:, T_PREFILL:])


def test_cache_bad_input():
    model = _model(get_space("s").smallest())
    cache = KVCache(model, 1, 4)
    with torch.inference_mode():
        with pytest.raises(ValueError, match="cache: holds batch 1 and 4 positions"):
            model(torch.zeros(1, 5, dtype=torch.long), cache)
        with pytest.raises(ValueError, match="cache: holds batch 1"):
            model(torch.zeros(2, 1, dtype=torch.long), cache)
    assert cache.pos == 0
    for batch, max_len, field in ((0, 4, "batch"), (1, 1025, "max_len")):
        with pytest.raises(ValueError, match=field):
            KVCache(model, batch, max_len)
    with pytest.raises(TypeError, match="batch: expected an int, got 1.0"):   # not coerced
        KVCache(model, 1.0, 4)
    assert KVCache(model, np.int64(1), np.int64(4)).batch == 1              # numpy ints, as everywhere
    with pytest.raises(ValueError, match="n_new"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 0)


# ---- closed-form cost ---------------------------------------------------------------------------

@pytest.mark.parametrize("space,device", [("s", "cpu"), ("m", "meta"), ("l", "meta")])
def test_decode_flops_match_flop_counter(space, device):
    """Real decode steps after a prefill, counted by torch (math SDPA, as in test_cost). m and l run
    the same model code on the meta device (shapes only: the same aten ops, no multi-GB weights)."""
    sp = get_space(space)
    archs = sp.sample(3 if space == "s" else 2, seed=13)
    batch, steps = 2, 3
    predicted = cost.decode_flops(sp.encode(archs), space, batch, T_PREFILL, steps=steps)
    one_step = cost.decode_flops(sp.encode(archs), space, batch, T_PREFILL)
    for a, f, f1 in zip(archs, predicted, one_step):
        model = GPT(a, device=device, init=False)
        cache = KVCache(model, batch, T_PREFILL + steps)
        with torch.inference_mode():
            tok = model.next_token(torch.zeros(batch, T_PREFILL, dtype=torch.long, device=device), cache)
            counters = []
            for _ in range(steps):
                counters.append(FlopCounterMode(display=False))
                with sdpa_kernel(SDPBackend.MATH), counters[-1]:
                    tok = model.next_token(tok, cache)
        assert counters[0].get_total_flops() == f1, a.id
        assert sum(c.get_total_flops() for c in counters) == f, a.id


def test_decode_flops_hand_computed_case():
    """s, 10 layers of E=192, r=2, h=4; B=1; one step with 3 cached tokens, then two steps."""
    a = get_space("s").arch(192, 10, [2] * 10, [4] * 10, False)
    E, h, r = 192, 4, 2

    def step(keys):
        per_layer = 2 * (E * 3 * 64 * h + 64 * h * E + 2 * r * E * E) + 2 * 2 * h * keys * 64
        return 10 * per_layer + 2 * E * 50304

    assert cost.decode_flops([a], "s", 1, 3)[0] == step(4)
    assert cost.decode_flops([a], "s", 1, 3, steps=2)[0] == step(4) + step(5)
    assert cost.decode_flops([a], "s", 3, 3)[0] == 3 * step(4)
    # a decode step of an empty cache is a one-token forward
    assert cost.decode_flops([a], "s", 1, 0)[0] == cost.flops([a], "s", 1, 1)[0]


def test_kv_cache_mb_hand_computed_and_equal_to_the_cache_tensors():
    sp = get_space("s")
    a = sp.arch(192, 10, [2] * 10, [4, 8] * 5, True)
    # keys + values, 10 layers, heads 4/8 alternating, 64 dims, B=3, S=100, bf16
    assert cost.kv_cache_mb([a], "s", 3, 100, "bfloat16")[0] == 2 * 3 * 100 * 64 * (5 * 4 + 5 * 8) * 2 / 2 ** 20
    for arch in sp.sample(5, seed=3) + [a]:
        model = GPT(arch, device="meta", dtype=torch.bfloat16, init=False)
        cache = KVCache(model, 3, 100)
        assert cache.nbytes / 2 ** 20 == cost.kv_cache_mb([arch], "s", 3, 100, "bfloat16")[0]


def test_decode_memory_is_weights_cache_and_one_token():
    sp = get_space("s")
    a = sp.arch(192, 10, [2] * 10, [4] * 10, False)
    E, B, S, s = 192, 2, 64, 2
    # one token's activations: logits + residual + final LN (V + 2E), the widest block max(attn, mlp)
    one_token = B * (50304 + 2 * E + max(2 * E + 7 * 64 * 4, 3 * E + 2 * 2 * E))
    cache = 2 * B * S * 64 * 4 * 10
    expected = s * (cost.params([a], "s")[0] + one_token + cache) / 2 ** 20
    assert cost.decode_memory_mb([a], "s", B, S, "bfloat16")[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kw,exc,field", [
    ({"prefix_len": -1}, ValueError, "prefix_len"), ({"steps": 0}, ValueError, "steps"),
    ({"prefix_len": 1020, "steps": 5}, ValueError, "prefix_len \\+ steps"),
    ({"batch": 0}, ValueError, "batch"), ({"prefix_len": 2.0}, TypeError, "prefix_len")])
def test_decode_flops_bad_arguments(kw, exc, field):
    X = get_space("s").sample_features(2, seed=0)
    with pytest.raises(exc, match=field):
        cost.decode_flops(X, "s", **{"batch": 1, "prefix_len": 8, **kw})


# ---- measurement primitives ---------------------------------------------------------------------

class _Clocked:
    """A real small model whose calls advance a fake clock: 1000 ms per prefill, 1 ms per decode
    step. A timer that spans exactly the G decode steps therefore reads exactly 1 ms per token."""

    def __init__(self, model, log):
        self.model, self.log, self.now_ms = model, log, 0.0
        self.wte, self.active = model.wte, model.active
        self.parameters, self.buffers = model.parameters, model.buffers

    def next_token(self, idx, cache):
        prefill = idx.shape[1] > 1
        self.now_ms += 1000.0 if prefill else 1.0
        self.log.append("prefill" if prefill else "step")
        return self.model.next_token(idx, cache)


def test_measure_decode_cpu_times_only_the_decode_steps(monkeypatch):
    log = []
    m = _Clocked(_model(get_space("s").smallest()), log)
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(perf_counter=lambda: m.now_ms / 1e3))
    r = measure.measure_decode_cpu(m, 2, 4, 3, warmup=1, repeats=2)
    np.testing.assert_allclose(r["decode_ms"], [1.0, 1.0])
    assert (r["batch"], r["prefill_len"], r["gen_tokens"]) == (2, 4, 3)
    assert log == (["prefill"] + ["step"] * 3) * 3


def test_measure_decode_cuda_protocol_with_fake_cuda(monkeypatch):
    """The CUDA path on CPU with recording fakes: events around the G steps only, the GPU
    synchronised after the prefill and before reading the events, peak memory after a reset."""
    log = []
    m = _Clocked(_model(get_space("s").smallest()), log)

    class Event:
        def __init__(self, enable_timing=False):
            assert enable_timing

        def record(self):
            self.t = m.now_ms
            log.append("record")

        def elapsed_time(self, end):
            return end.t - self.t

    own = sum(t.numel() * t.element_size() for t in (*m.model.parameters(), *m.model.buffers()))
    pool = 77 * 2 ** 20                   # another tensor the process holds (e.g. a weight pool)
    fake = types.SimpleNamespace(Event=Event, synchronize=lambda dev=None: log.append("sync"),
                                 reset_peak_memory_stats=lambda dev=None: log.append("reset"),
                                 memory_allocated=lambda dev=None: own + pool,
                                 max_memory_allocated=lambda dev=None: own + pool + 3 * 2 ** 20)
    monkeypatch.setattr(torch, "cuda", fake)
    r = measure.measure_decode_cuda(m, 2, 4, 3, warmup=1, repeats=2)
    np.testing.assert_allclose(r["decode_ms"], [1.0, 1.0])
    # the model's own peak: its weights and the 3 MB of cache and steps, not the pool beside it
    assert r["decode_memory_MB"].tolist() == [own / 2 ** 20 + 3.0] and r["gen_tokens"] == 3
    timed = ["prefill", "sync", "record"] + ["step"] * 3 + ["record", "sync"]
    assert log == ["sync"] + timed * 3 + ["prefill", "sync", "reset"] + ["step"] * 3 + ["sync"]


def test_measure_decode_real_run_and_bad_arguments():
    model = _model(get_space("s").smallest())
    r = measure.measure_decode_cpu(model, 1, 8, 2, warmup=0, repeats=2)
    assert r["decode_ms"].shape == (2,) and np.all(np.isfinite(r["decode_ms"]) & (r["decode_ms"] > 0))
    for kw, field in (({"batch": 0}, "batch"), ({"prefill_len": 0}, "prefill_len"),
                      ({"gen_tokens": 1024}, "prefill_len \\+ gen_tokens"), ({"repeats": 0}, "repeats"),
                      ({"warmup": -1}, "warmup")):
        args = {"batch": 1, "prefill_len": 8, "gen_tokens": 2, "warmup": 0, "repeats": 1, **kw}
        with pytest.raises(ValueError, match=field):
            measure.measure_decode_cpu(model, **args)
