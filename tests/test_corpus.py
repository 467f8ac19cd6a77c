"""Corpus builder: tokenizer, text extraction, dedup, split by document, reproducibility."""
import json

import numpy as np
import pytest

pytest.importorskip("tiktoken")

from hwgptbench.training import corpus as C  # noqa: E402


def test_gpt2_tokenizer_known_ids(tmp_path):
    enc = C.gpt2_encoding()
    # ids of the original GPT-2 vocabulary (encoder.json): "Hello" 15496, " world" 995
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert enc.encode_ordinary("It's") == [1026, 338]
    assert enc.n_vocab == 50257 and enc.eot_token == C.EOT
    bad = tmp_path / "gpt2.tiktoken"
    bad.write_bytes(C.BPE_FILE.read_bytes()[:-10])
    with pytest.raises(ValueError, match="sha256"):
        C.gpt2_encoding(bad)


def test_man_and_html_extraction():
    man = ('.\\" a comment\n.TH OPEN 2 2023\n.SH NAME\nopen \\- open a file\n.SH DESCRIPTION\n'
           'The \\fBopen\\fP call opens\n.IR pathname .\n.PP\nIt returns \\(lqfd\\(rq.\n')
    text = C.man_to_text(man)
    assert "comment" not in text and "open - open a file" in text
    assert "The open call opens\npathname." in text and 'It returns "fd".' in text
    html = ('<html><head><title>T</title><style>p{}</style></head><body class="x">'
            '<div class="sphinxsidebar"><p>Navigation</p></div><h1>Title</h1><p>Some   text'
            '<br>more &amp; more</p><script>var a;</script><pre>  code\n  block</pre></body></html>')
    text = C.html_to_text(html)
    assert "Navigation" not in text and "var a" not in text and "p{}" not in text
    assert "Title" in text and "Some text" in text and "more & more" in text and "  code" in text


def test_chunks_cut_at_paragraphs():
    paras = [f"para {i} " + "x" * 40 for i in range(10)]
    pieces = C.split_chunks("\n\n".join(paras), 120)
    assert all(len(p) <= 120 for p in pieces)
    assert "\n\n".join(pieces) == "\n\n".join(paras)
    assert C.split_chunks("y" * 250, 100) == ["y" * 100, "y" * 100, "y" * 50]


def test_split_documents_by_token_fraction():
    sizes = [100] * 50
    s = C.split_documents(sizes, seed=3, val_frac=0.1, test_frac=0.2)
    assert (s == 1).sum() == 5 and (s == 2).sum() == 10 and (s == 0).sum() == 35
    assert np.array_equal(s, C.split_documents(sizes, 3, 0.1, 0.2))
    assert not np.array_equal(s, C.split_documents(sizes, 4, 0.1, 0.2))
    with pytest.raises(ValueError, match="val_frac"):
        C.split_documents(sizes, 0, 0.6, 0.1)


def _texts(d, n=40):
    d.mkdir()
    rng = np.random.default_rng(1)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    docs = []
    for i in range(n):
        text = f"Document number {i}. " + " ".join(rng.choice(words, size=int(rng.integers(50, 120))))
        (d / f"d{i:02d}.txt").write_text(text)
        docs.append(text)
    (d / "dup.txt").write_text("  " + docs[3].upper() + "\n")           # duplicate up to case/space
    (d / "short.txt").write_text("too short")
    (d / "greek.txt").write_text("Καλημέρα κόσμε, αυτό είναι ένα κείμενο. " * 20)
    (d / "ignored.bin").write_text("not a text file " * 30)
    return docs


def test_build_corpus_splits_by_document_and_rebuilds_identically(tmp_path):
    docs = _texts(tmp_path / "texts")
    src = [C.Source.local(tmp_path / "texts")]
    man = C.build_corpus(tmp_path / "a", src, seed=0, val_frac=0.15, test_frac=0.15, log=lambda *a: None)
    info = man["sources"][0]
    assert info["files"] == 43 and info["documents"] == 40
    assert (info["dropped_duplicate"], info["dropped_short"], info["dropped_non_english"]) == (1, 1, 1)
    enc = C.gpt2_encoding()
    seen = {}
    for split in C.SPLITS:
        toks = C.load_split(tmp_path / "a", split)
        assert toks.dtype == np.dtype("<u2") and toks[-1] == C.EOT
        assert man["splits"][split]["tokens"] == len(toks)
        text = enc.decode(np.asarray(toks).tolist())
        for d in text.split("<|endoftext|>")[:-1]:
            assert d not in seen, "a document is in two splits"
            seen[d] = split
    assert sorted(seen) == sorted(docs)                     # every document exactly once
    assert set(seen.values()) == set(C.SPLITS)
    assert sum(man["splits"][s]["tokens"] for s in C.SPLITS) == man["totals"]["tokens"]
    # same inputs, same seed -> byte-identical token files; the manifest records their sha256
    man2 = C.build_corpus(tmp_path / "b", src, seed=0, val_frac=0.15, test_frac=0.15, log=lambda *a: None)
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    for s in C.SPLITS:
        assert man2["splits"][s]["sha256"] == man["splits"][s]["sha256"]
        assert (tmp_path / "a" / f"{s}.bin").read_bytes() == (tmp_path / "b" / f"{s}.bin").read_bytes()
    man3 = C.build_corpus(tmp_path / "c", src, seed=1, val_frac=0.15, test_frac=0.15, log=lambda *a: None)
    assert man3["splits"]["test"]["sha256"] != man["splits"]["test"]["sha256"]


def test_pack_and_checksum(tmp_path):
    _texts(tmp_path / "texts", n=12)
    C.build_corpus(tmp_path / "a", [C.Source.local(tmp_path / "texts")], val_frac=0.2, test_frac=0.2,
                   log=lambda *a: None)
    C.pack(tmp_path / "a", tmp_path / "p")
    assert not (tmp_path / "p" / "train.bin").exists()
    assert np.array_equal(C.load_split(tmp_path / "p", "train"), C.load_split(tmp_path / "a", "train"))
    assert (tmp_path / "p" / "train.bin").exists()            # unpacked once, next to the packed file
    C.pack(tmp_path / "a", tmp_path / "p")
    assert not (tmp_path / "p" / "train.bin").exists()        # repacking leaves only what should travel
    path = tmp_path / "a" / "val.bin"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        C.load_split(tmp_path / "a", "val")
    with pytest.raises(ValueError, match="split"):
        C.load_split(tmp_path / "a", "dev")


def test_source_validation(tmp_path):
    with pytest.raises(ValueError, match="version"):
        C.Source("x", "deb", None, ("*",))
    with pytest.raises(ValueError, match="fmt"):
        C.Source("x", "deb", "1", ("*",), fmt="pdf")
    with pytest.raises(FileNotFoundError):
        C.Source.local(tmp_path / "missing")


def test_default_sources_are_pinned_and_unique():
    names = [s.name for s in C.DEFAULT_SOURCES]
    assert len(names) == len(set(names)) and all(s.version for s in C.DEFAULT_SOURCES)
    assert json.dumps([s.include for s in C.DEFAULT_SOURCES])


def _naive_bpe(ranks: dict[bytes, int], piece: bytes) -> list[int]:
    """Textbook BPE on one pre-token: repeatedly merge the adjacent pair whose concatenation has
    the lowest rank, until no pair is a token (an independent re-implementation of the rule)."""
    parts = [bytes([b]) for b in piece]
    while True:
        best = min(((ranks[a + b], i) for i, (a, b) in enumerate(zip(parts, parts[1:])) if a + b in ranks),
                   default=None)
        if best is None:
            return [ranks[p] for p in parts]
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]


def test_restricted_gpt2_bpe_is_textbook_bpe_with_fewer_merges():
    import base64

    import regex
    full = {base64.b64decode(t): int(r) for t, r in (ln.split() for ln in C.BPE_FILE.read_bytes().splitlines() if ln)}
    text = ("The GNU C Library manual describes functions such as strncpy() and pthread_mutex_lock; "
            "   don't panic: 3.14159 × 2 — naïve café\n\n\tindented  code_block = {'key': [1, 2]}")
    pieces = [p.encode() for p in regex.findall(C.GPT2_PATTERN, text)]
    for n_ranks in (256, 300, 1000, 8192):
        enc = C.gpt2_encoding(n_ranks=n_ranks)
        ranks = {t: r for t, r in full.items() if r < n_ranks}
        want = [t for p in pieces for t in _naive_bpe(ranks, p)]
        assert enc.encode_ordinary(text) == want
        assert max(want) < n_ranks and enc.decode(want) == text
        assert enc.encode("<|endoftext|>", allowed_special="all") == [n_ranks]
    assert len(C.gpt2_encoding(n_ranks=256).encode_ordinary(text)) == len(text.encode())   # bytes only
    with pytest.raises(ValueError, match="n_ranks"):
        C.gpt2_encoding(n_ranks=C.EOT)


def test_derived_corpus_keeps_documents_and_splits(tmp_path):
    docs = _texts(tmp_path / "texts")
    src = [C.Source.local(tmp_path / "texts")]
    man = C.build_corpus(tmp_path / "a", src, seed=0, val_frac=0.15, test_frac=0.15, log=lambda *a: None)
    der = C.derive_corpus(tmp_path / "a", tmp_path / "d", 1000, log=lambda *a: None)
    gpt2, small = C.gpt2_encoding(), C.gpt2_encoding(n_ranks=1000)
    assert der["tokenizer"]["eot"] == 1000 and der["derived_from"]["manifest_sha256"] == C.manifest_hash(tmp_path / "a")
    for split in C.SPLITS:
        old, new = np.asarray(C.load_split(tmp_path / "a", split)), np.asarray(C.load_split(tmp_path / "d", split))
        assert new.max() <= 1000 and new[-1] == 1000
        assert (new == 1000).sum() == (old == C.EOT).sum() == man["splits"][split]["documents"]
        assert small.decode(new.tolist()).replace("<|endoftext|>", "\0") == \
            gpt2.decode(old.tolist()).replace("<|endoftext|>", "\0")        # the same text, in order
        assert len(new) > len(old)                                      # fewer merges, more tokens
    assert der["totals"]["documents"] == man["totals"]["documents"] == 40
    again = C.derive_corpus(tmp_path / "a", tmp_path / "e", 1000, log=lambda *a: None)
    assert again == der
    with pytest.raises(ValueError, match="derived"):
        C.derive_corpus(tmp_path / "d", tmp_path / "f", 500, log=lambda *a: None)
