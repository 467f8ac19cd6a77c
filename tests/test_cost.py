"""The closed-form cost model against torch's own counts (the independent truth)."""
import numpy as np
import pytest

from hwgptbench import cost, get_space

torch = pytest.importorskip("torch")
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from hwgptbench.model import GPT  # noqa: E402


@pytest.mark.parametrize("space", ["xs", "s", "m", "l"])
def test_params_equal_torch_count(space):
    sp = get_space(space)
    archs = [sp.largest(), sp.smallest()] + sp.sample(200, seed=11)
    predicted = cost.params(sp.encode(archs), space)
    for a, p in zip(archs, predicted):
        model = GPT(a, init=False)          # torch.empty: no pages touched, so 200 l-models are cheap
        assert sum(t.numel() for t in model.parameters()) == p, a.id


@pytest.mark.parametrize("space", ["xs", "s", "m", "l"])
def test_flops_match_flop_counter(space):
    """FlopCounterMode counts SDPA only in its decomposed (math) form on CPU, so force that path;
    the math path computes the full T x T score matrix, the convention cost.flops documents."""
    sp = get_space(space)
    archs = sp.sample(50, seed=12)
    batch, seq = 1, 8
    predicted = cost.flops(sp.encode(archs), space, batch, seq)
    idx = torch.zeros((batch, seq), dtype=torch.long)
    for a, f in zip(archs, predicted):
        model = GPT(a, init=False)
        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), counter:
            model(idx)
        assert abs(counter.get_total_flops() - f) <= 0.01 * f, a.id
        assert counter.get_total_flops() == f, a.id   # in fact exact


def test_flops_hand_computed_case():
    """s, E=192, one arch with 10 layers of r=2, h=4, no bias; B=1, T=2, by hand."""
    sp = get_space("s")
    a = sp.arch(192, 10, [2] * 10, [4] * 10, False)
    E, h, r, T = 192, 4, 2, 2
    per_layer = 2 * T * (E * 3 * 64 * h + 64 * h * E + 2 * r * E * E) + 2 * 2 * h * T * T * 64
    expected = 10 * per_layer + 2 * T * E * 50304
    assert cost.flops([a], "s", 1, T)[0] == expected


def test_params_hand_computed_case():
    sp = get_space("s")
    a = sp.arch(192, 10, [2] * 10, [4] * 10, True)
    E, a_w, hid = 192, 256, 384
    block = 4 * E + (E * 3 * a_w + 3 * a_w) + (a_w * E + E) + (E * hid + hid) + (hid * E + E)
    assert cost.params([a], "s")[0] == 50304 * E + 10 * block + 2 * E


FUNCTIONS = {
    "params": lambda x, sp: cost.params(x, sp),
    "flops": lambda x, sp: cost.flops(x, sp, 4, 128),
    "memory_mb": lambda x, sp: cost.memory_mb(x, sp, 8, None, "bfloat16"),
    "weights_mb": lambda x, sp: cost.weights_mb(x, sp, "float32"),
    "decode_flops": lambda x, sp: cost.decode_flops(x, sp, 2, 100, 7),
    "kv_cache_mb": lambda x, sp: cost.kv_cache_mb(x, sp, 3, 200),
    "decode_memory_mb": lambda x, sp: cost.decode_memory_mb(x, sp, 2, 256, "float16"),
    "exact_features": lambda x, sp: cost.exact_features(x, sp, 8, 64),
}


@pytest.mark.parametrize("space", ["xs", "s", "m", "l"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_vectorised_equals_one_at_a_time(space, name):
    """A single row is computed with Python ints (a fast single query), many rows with numpy
    arrays: the two must agree exactly, in value, dtype and shape."""
    sp, fn = get_space(space), FUNCTIONS[name]
    X = sp.encode([sp.largest(), sp.smallest()] + sp.sample(30, seed=5))
    together = fn(X, space)
    alone = [fn(X[i:i + 1], space) for i in range(len(X))]
    assert all(a.shape == together[:1].shape and a.dtype == together.dtype for a in alone)
    np.testing.assert_array_equal(together, np.concatenate(alone))


def test_one_row_refuses_an_overflowing_batch_as_many_rows_do():
    sp = get_space("l")
    X = sp.encode([sp.largest(), sp.smallest()])
    for fn in (lambda x: cost.flops(x, "l", 10 ** 9, 1024), lambda x: cost.memory_mb(x, "l", 10 ** 12, 1024)):
        with pytest.raises(ValueError) as many:
            fn(X)
        with pytest.raises(ValueError) as one:
            fn(X[:1])
        assert str(one.value) == str(many.value) and "allowed: batch <=" in str(one.value)


def test_memory_grows_with_batch_and_dtype():
    sp = get_space("s")
    X = sp.encode(sp.sample(10, seed=1))
    m1 = cost.memory_mb(X, "s", 1, 256, "bfloat16")
    assert np.all(cost.memory_mb(X, "s", 8, 256, "bfloat16") > m1)
    np.testing.assert_allclose(cost.memory_mb(X, "s", 1, 256, "float32"), 2 * m1)
    assert np.all(m1 > cost.weights_mb(X, "s", "bfloat16"))


@pytest.mark.parametrize("kw,exc", [({"batch": 0}, ValueError), ({"seq": 2048}, ValueError),
                                    ({"batch": 1.5}, TypeError), ({"dtype": "int8"}, ValueError)])
def test_bad_cost_arguments(kw, exc):
    X = get_space("s").sample_features(2, seed=0)
    args = {"batch": 1, "seq": 16, "dtype": "bfloat16", **kw}
    with pytest.raises(exc, match=next(iter(kw))):
        cost.memory_mb(X, "s", **args)


def test_each_space_has_its_own_vocabulary_and_context():
    """xs reads GPT-2's BPE restricted to 8192 ranks (+ EOT) and 256 positions: the model's
    embedding, its context check and the cost model's defaults all follow the space."""
    xs = get_space("xs")
    model = GPT(xs.largest(), init=False)
    assert model.wte.shape == (8256, 256) and xs.vocab_padded == 8256
    with torch.inference_mode():
        assert model(torch.zeros((1, 256), dtype=torch.long)).shape == (1, 256, 8256)
    with pytest.raises(ValueError, match="context 256"):
        model(torch.zeros((1, 257), dtype=torch.long))
    assert cost.flops([xs.largest()], "xs")[0] == cost.flops([xs.largest()], "xs", 1, 256)[0]
    with pytest.raises(ValueError, match="seq"):
        cost.flops([xs.largest()], "xs", 1, 1024)
    # the LM head's share: E * V per token, by hand for the largest xs arch at T=1
    a = xs.largest()
    by_hand = 2 * (4 * 256 * 256 * 4 + 2 * 256 * 256 * 16 + 2 * 256 * 4 * 1 + 256 * 8256)
    assert cost.flops([a], "xs", 1, 1)[0] == by_hand
