"""Search spaces and the architecture type: round-trips, sampling, neighbours, bad input."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgptbench import SPACES, Arch, as_arch, get_space


def test_space_sizes_match_protocol():
    # docs/PROTOCOLS.md section 1: about 1.9e12 (s), 5.4e23 (m), 1.5e35 (l); by hand for s:
    assert get_space("s").size == 3 * 2 * (9 ** 10 + 9 ** 11 + 9 ** 12)
    for name, approx in (("s", 1.9e12), ("m", 5.4e23), ("l", 1.5e35)):
        assert abs(get_space(name).size / approx - 1) < 0.03


def test_choices_are_the_protocols():
    s, m, l = SPACES["s"], SPACES["m"], SPACES["l"]
    assert (s.embed_dims, s.n_layers, s.n_heads) == ((192, 384, 768), (10, 11, 12), (4, 8, 12))
    assert (m.embed_dims, m.n_layers, m.n_heads) == ((256, 512, 1024), (22, 23, 24), (8, 12, 16))
    assert (l.embed_dims, l.n_layers, l.n_heads) == ((320, 640, 1280), (34, 35, 36), (8, 16, 20))
    assert all(sp.mlp_ratios == (2, 3, 4) and sp.biases == (True, False) for sp in SPACES.values())


@st.composite
def archs(draw, space=None):
    sp = get_space(space or draw(st.sampled_from(sorted(SPACES))))
    n = draw(st.sampled_from(sp.n_layers))
    return sp.arch(draw(st.sampled_from(sp.embed_dims)), n,
                   draw(st.lists(st.sampled_from(sp.mlp_ratios), min_size=n, max_size=n)),
                   draw(st.lists(st.sampled_from(sp.n_heads), min_size=n, max_size=n)),
                   draw(st.booleans()))


@given(archs(), st.booleans(), st.booleans())
@settings(max_examples=200, deadline=None)
def test_round_trips(a, pad, bias_as_str):
    sp = get_space(a.space)
    assert Arch.from_id(a.id) == a
    d = a.to_hwg_dict(pad=pad, bias_as_str=bias_as_str)
    if pad:
        d.pop("sample_layer_indices")
    assert Arch.from_hwg_dict(d, a.space) == a
    assert Arch.from_hwg_dict(json.loads(json.dumps(d)), a.space) == a
    assert sp.decode(sp.encode([a]))[0] == a
    assert hash(as_arch(a.id)) == hash(a)


def test_hwg_dict_both_bias_spellings_and_padding():
    d = {"sample_embed_dim": 384, "sample_n_layer": 10, "sample_mlp_ratio": [2, 3, 4] * 4,
         "sample_n_head": [4, 8, 12] * 4, "sample_bias": "False", "sample_layer_indices": list(range(10))}
    a = Arch.from_hwg_dict(d, "s")
    assert a.bias is False and a.mlp_ratio == (2, 3, 4, 2, 3, 4, 2, 3, 4, 2) and a.n_layer == 10
    assert Arch.from_hwg_dict({**d, "sample_bias": False}, "s") == a
    assert a.id == "gpt-s-10-384-2-3-4-2-3-4-2-3-4-2-4-8-12-4-8-12-4-8-12-4-False"


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_random_corruptions_raise(data):
    a = data.draw(archs())
    sp = get_space(a.space)
    d = a.to_hwg_dict()
    key = data.draw(st.sampled_from(["sample_embed_dim", "sample_n_layer", "sample_mlp_ratio",
                                     "sample_n_head", "sample_bias", "sample_layer_indices", "drop",
                                     "extra", "short"]))
    bad = data.draw(st.one_of(st.integers(-5, 5000), st.text(max_size=3), st.none(), st.floats()))
    if key == "drop":
        d.pop(data.draw(st.sampled_from(["sample_embed_dim", "sample_n_layer", "sample_mlp_ratio",
                                         "sample_n_head", "sample_bias"])))
    elif key == "extra":
        d["sample_typo"] = 1
    elif key == "short":
        d["sample_mlp_ratio"] = d["sample_mlp_ratio"][:-1]
    elif key in ("sample_mlp_ratio", "sample_n_head"):
        i = data.draw(st.integers(0, a.n_layer - 1))
        choices = sp.mlp_ratios if key == "sample_mlp_ratio" else sp.n_heads
        if bad in choices:
            bad = 7
        d[key][i] = bad
    elif key == "sample_n_layer":
        if bad in sp.n_layers:
            bad = 99
        d[key] = bad
    else:
        if key == "sample_embed_dim" and bad in sp.embed_dims:
            bad = 1
        if key == "sample_bias" and bad in ("True", "False"):
            bad = "yes"
        d[key] = bad
    with pytest.raises((ValueError, TypeError)) as e:
        Arch.from_hwg_dict(d, a.space)
    assert "sample_" in str(e.value) or "mlp_ratio" in str(e.value) or "n_head" in str(e.value)


@given(archs(), st.integers(0, 200), st.sampled_from(["-", "x", "gpt", "9", ""]))
@settings(max_examples=200, deadline=None)
def test_corrupted_ids_raise(a, pos, junk):
    s = a.id
    pos = pos % len(s)
    corrupted = s[:pos] + junk + s[pos + 1:]
    try:
        b = Arch.from_id(corrupted)
    except (ValueError, TypeError):
        return
    assert b.id == corrupted.strip()      # only a different *valid* id may parse, and exactly


@pytest.mark.parametrize("bad,match", [
    ("gpt-x-10-192", "space"), ("gpt-s-13-192-" + "2-" * 13 + "4-" * 13 + "True", "n_layer"),
    ("gpt-s-10-100-" + "2-" * 10 + "4-" * 10 + "True", "embed_dim"),
    ("gpt-s-10-192-" + "2-" * 10 + "4-" * 9 + "True", "expected 10"),
    ("gpt-s-10-192-" + "2-" * 10 + "4-" * 10 + "maybe", "bias"), ("hello", "malformed"),
])
def test_bad_ids_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        Arch.from_id(bad)


def test_bad_construction_messages():
    with pytest.raises(ValueError, match=r"mlp_ratio\[3\].*allowed: \[2, 3, 4\]"):
        get_space("s").arch(192, 10, [2, 2, 2, 5] + [2] * 6, [4] * 10, True)
    with pytest.raises(TypeError, match="bias"):
        get_space("s").arch(192, 10, [2] * 10, [4] * 10, "True")
    with pytest.raises(ValueError, match="unknown space 'xl'"):
        get_space("xl")
    with pytest.raises(TypeError, match="embed_dim"):
        get_space("s").arch(192.0, 10, [2] * 10, [4] * 10, True)
    with pytest.raises(ValueError, match="space"):
        as_arch(get_space("m").largest(), "s")


def test_sampling_is_seeded_and_covers_choices():
    sp = get_space("m")
    a, b = sp.sample(300, seed=7), sp.sample(300, seed=7)
    assert a == b and a != sp.sample(300, seed=8)
    X = sp.encode(a)
    for col, choices in ((0, sp.embed_dims), (1, sp.n_layers), (2, (0, 1))):
        assert set(X[:, col]) == set(choices)
    # per-gene uniform: each embed dim near 1/3 of 300
    counts = np.unique(X[:, 0], return_counts=True)[1]
    assert np.all(np.abs(counts - 100) < 40)


def test_feature_matrix_round_trip_vectorised():
    sp = get_space("l")
    X = sp.sample_features(500, seed=3)
    archs_ = sp.decode(X)
    np.testing.assert_array_equal(sp.encode(archs_), X)
    assert X.shape == (500, sp.n_features) and len(sp.feature_names) == sp.n_features
    bad = X.copy()
    bad[5, 3 + 35] = 2          # a gene past depth 34 or 35 must be 0
    if X[5, 1] <= 35:
        with pytest.raises(ValueError, match="past n_layer"):
            sp.decode(bad)
    with pytest.raises(ValueError, match="shape"):
        sp.decode(X[:, :-1])


def test_neighbours_differ_in_exactly_one_choice():
    sp = get_space("s")
    a = sp.sample(1, seed=4)[0]
    nb = sp.neighbours(a)
    assert len(set(nb)) == len(nb) and a not in nb
    # 2 other E + 2 other depths + bias + per layer 2 ratios and 2 head counts
    assert len(nb) == 2 + 2 + 1 + 4 * a.n_layer
    for b in nb:
        diffs = (b.embed_dim != a.embed_dim) + (b.n_layer != a.n_layer) + (b.bias != a.bias)
        if b.n_layer == a.n_layer:
            diffs += sum(x != y for x, y in zip(a.mlp_ratio, b.mlp_ratio))
            diffs += sum(x != y for x, y in zip(a.n_head, b.n_head))
        assert diffs == 1


# ---- FeatureMatrix: checked once ------------------------------------------------------------------------
def test_sampling_keeps_its_values():
    """sha256 of draws made by the code before blocks and dtypes existed (tests and shipped fronts
    depend on them); a compact dtype draws the same values; beyond one block, still seeded."""
    import hashlib

    for space, n, seed, want in (
            ("s", 100_000, 12345, "e0fb542d3246e93bd8fdbff05605029b30b6c7d8c4bdf64a46c5f63c43b2f809"),
            ("l", 1000, 0, "433c6c1f423b2fd29ec9e7010db508461332923e7e6291c257ac483ba3819f4b"),
            ("m", 20_000, 0, "bac60a611687047539456dfe47e612a3eb9d1a5b41ccbaf9a28ddcefcd128d04")):
        sp = get_space(space)
        X = sp.sample_features(n, seed=seed)
        assert X.dtype == np.int64 and hashlib.sha256(X.tobytes()).hexdigest() == want
        np.testing.assert_array_equal(sp.sample_features(n, seed=seed, dtype=np.int16), X)
    sp = get_space("s")
    big = sp.sample_features(300_000, seed=1, dtype=np.int16)
    np.testing.assert_array_equal(big, sp.sample_features(300_000, seed=1))
    sp.features(big)                                           # every block is valid
    assert not np.array_equal(big[:1000], big[200_000:201_000])
    with pytest.raises(ValueError, match="dtype"):
        sp.sample_features(3, seed=0, dtype=np.int8)


def test_features_is_the_one_check():
    from hwgptbench.features import FeatureMatrix, is_checked

    sp = get_space("m")
    X = sp.sample_features(50, seed=2)
    F = sp.features(X)
    assert isinstance(F, FeatureMatrix) and F.space is sp and not F.flags.writeable
    assert sp.features(F) is F                                 # nothing checked twice
    for other in (sp.decode(X), [a.id for a in sp.decode(X)], [a.to_hwg_dict() for a in sp.decode(X)]):
        np.testing.assert_array_equal(sp.features(other), X)
    X[0, 0] = 7                                                # the caller's array is not ours
    assert F[0, 0] != 7
    with pytest.raises(ValueError):
        F[0, 0] = 256                                          # read-only
    assert is_checked(F[3:9], sp) and is_checked(F[F[:, 2] == 1], sp) and is_checked(F[[4, 1]], sp)
    for not_rows in (F[:, 1:], F[:, ::-1], F.T, F + 0, F.copy(), np.asarray(F), F[0]):
        assert not is_checked(not_rows, sp)
    assert not is_checked(F, get_space("s"))
    V = sp.validate_features(F)                                # a plain writable int64 copy
    np.testing.assert_array_equal(V, F)
    assert type(V) is np.ndarray and V.flags.writeable and V.dtype == np.int64


def test_query_checks_each_row_once_and_compact_rows_give_the_same_answers(monkeypatch, tmp_path):
    import hwgptbench.benchmark as bm
    import hwgptbench.features as fm
    from hwgptbench import Benchmark, cost

    calls = []
    real = fm.check_matrix
    monkeypatch.setattr(fm, "check_matrix", lambda sp, X: calls.append(len(X)) or real(sp, X))
    monkeypatch.setattr("hwgptbench.space.check_matrix", fm.check_matrix)
    monkeypatch.setattr(bm, "_CHUNK", 1000)
    b = Benchmark("l", surrogates=tmp_path)                    # exact columns only
    X = b.space.sample_features(2500, seed=4)
    v = b.evaluate(X.astype(np.int16), b.columns())
    assert calls == [1000, 1000, 500]                          # one check per row, chunk by chunk
    np.testing.assert_array_equal(v, b.evaluate(X, b.columns()))
    assert np.array_equal(v[:, 0], cost.params(X, "l"))       # int16 rows widen before the products


def test_all_features_enumerates_a_small_space_exactly():
    """Truth: the size formula of docs/PROTOCOLS.md section 1 (xs: 3 x 2 x (9^2 + 9^3 + 9^4) = 44226)."""
    sp = get_space("xs")
    X = sp.all_features()
    assert len(X) == sp.size == 3 * 2 * (9 ** 2 + 9 ** 3 + 9 ** 4)
    assert len(np.unique(X, axis=0)) == len(X)
    assert np.array_equal(sp.validate_features(X), X)
    ids = {a.id for a in sp.decode(X[::997])}
    assert {sp.smallest().id, sp.largest().id} <= {a.id for a in sp.decode(X)} and len(ids) == len(X[::997])
    with pytest.raises(ValueError, match="limit"):
        get_space("s").all_features()
