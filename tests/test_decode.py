"""KV-cache decoding, its closed-form cost and its measurement, each against an independent truth:
the model's full (uncached) forward, torch's FlopCounterMode and tensor sizes, hand-computed cases,
and a fake clock that tells exactly which calls a timer spans."""
import pytest

from hwgptbench import cost, get_space

torch = pytest.importorskip("torch")

from hwgptbench.model import GPT, KVCache  # noqa: E402

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
    for batch, max_len, field in ((0, 4, "batch"), (1, 1025, "max_len"), (1.0, 4, "batch")):
        with pytest.raises(ValueError, match=field):
            KVCache(model, batch, max_len)
    with pytest.raises(ValueError, match="n_new"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 0)
