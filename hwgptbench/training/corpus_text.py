"""Plain-text documents from package files (hwgptbench.training.corpus step 3 and 4): man pages and HTML
stripped of markup, reST/POD/markdown kept as written, fortunes and KJV verses grouped, long files
cut at paragraph boundaries; the English and duplicate rules. Deterministic: sorted paths, no state.
"""
from __future__ import annotations

import fnmatch
import gzip
import hashlib
import html.parser
import json
import re
from pathlib import Path

__all__ = ["man_to_text", "html_to_text", "documents", "files_of", "is_english", "dedup_key", "split_chunks"]


def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


_MAN_ESC = [(r"\\f(\[[^\]]*\]|\(..|.)", ""), (r"\\\(em|\\\[em\]", "--"), (r"\\\(en|\\\[en\]", "-"),
            (r"\\\((aq|cq)", "'"), (r"\\\((dq|lq|rq)", '"'), (r"\\\(bu", "*"), (r"\\\(co", "(c)"),
            (r"\\\(rg", "(R)"), (r"\\\(mu", "x"), (r"\\\(..", ""), (r"\\\[[^\]]*\]", ""),
            (r"\\\*(\(..|\[[^\]]*\]|.)", ""), (r"\\s[-+]?\d", ""), (r"\\[&|^%:]", ""), (r"\\[ ~0]", " "),
            (r"\\-", "-"), (r"\\e", "\\\\"), (r"\\c$", "")]
_MAN_KEEP = {"SH", "SS", "TH", "B", "I", "BI", "IB", "BR", "RB", "IR", "RI", "SM", "SB", "TP", "IP", "UR",
             "MT", "OP", "Nm", "Nd", "Sh", "Ss"}


def man_to_text(src: str) -> str:
    """Strip roff markup from a man page: keep text and the words of font/heading macros."""
    out = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].strip().split(None, 1)
            if not parts:
                continue
            macro, args = parts[0], (parts[1] if len(parts) > 1 else "")
            if macro in ("SH", "SS", "Sh", "Ss"):
                out.append("")
            if macro in _MAN_KEEP and args:
                words = re.findall(r'"([^"]*)"|(\S+)', args)
                joiner = " " if macro in ("SH", "SS", "TH", "B", "I", "SM", "SB", "IP", "TP") else ""
                if macro in ("TH", "IP"):
                    words = words[:1]
                line = joiner.join(a or b for a, b in words)
            elif macro in ("PP", "LP", "P", "sp", "br", "RS", "RE", "TP", "IP", "Pp"):
                out.append("")
                continue
            else:
                continue
        for pat, rep in _MAN_ESC:
            line = re.sub(pat, rep, line)
        out.append(line)
    return "\n".join(out)


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML page without navigation, scripts, styles and sidebars."""

    SKIP_TAGS = {"script", "style", "head", "nav", "footer", "header", "title", "noscript", "svg"}
    SKIP_CLASS = {"sphinxsidebar", "related", "navheader", "navfooter", "footer", "headerlink", "toc",
                  "navigation", "sidebar", "breadcrumbs", "nav-chapters", "nav-wrapper", "nav-wide-wrapper",
                  "menu-bar", "searchbar-outer", "searchresults-outer", "theme-popup", "sidebar-scrollbox"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "dt", "dd",
             "table", "ul", "ol", "dl", "blockquote", "section", "hr", "td", "th"}
    VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.stack, self.skip_depth, self.pre = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCK:
            self.parts.append("\n")
        if tag in self.VOID:
            return
        cls = dict(attrs).get("class") or ""
        skip = tag in self.SKIP_TAGS or not self.SKIP_CLASS.isdisjoint(cls.split())
        self.stack.append((tag, skip))
        self.skip_depth += skip
        self.pre += tag == "pre"

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self.stack:            # tolerate unclosed tags: pop to the matching one
            t, skip = self.stack.pop()
            self.skip_depth -= skip
            self.pre -= t == "pre"
            if t == tag:
                break
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.skip_depth == 0:
            self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(src: str) -> str:
    p = _HTMLText()
    p.feed(src)
    p.close()
    # collapsed whitespace leaves at most one leading space; more is <pre> indentation: keep it
    return "\n".join((line[1:] if line.startswith(" ") and not line.startswith("  ") else line).rstrip()
                      for line in "".join(p.parts).splitlines())


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def split_chunks(text: str, max_chars: int) -> list[str]:
    """Cut a long text at paragraph boundaries into pieces of at most max_chars (hard cut if needed)."""
    if len(text) <= max_chars:
        return [text]
    out, cur, size = [], [], 0
    for para in text.split("\n\n"):
        while len(para) > max_chars:
            if cur:
                out.append("\n\n".join(cur))
                cur, size = [], 0
            out.append(para[:max_chars])
            para = para[max_chars:]
        if size + len(para) + 2 > max_chars and cur:
            out.append("\n\n".join(cur))
            cur, size = [], 0
        cur.append(para)
        size += len(para) + 2
    if cur:
        out.append("\n\n".join(cur))
    return out


def files_of(root: Path, source) -> list[Path]:
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not p.is_symlink() and not p.name.startswith(".") \
                and any(fnmatch.fnmatch(rel, g) for g in source.include) \
                and not any(fnmatch.fnmatch(rel, g) for g in source.exclude):
            files.append(p)
    return files


def documents(root: Path, source, max_doc_chars: int = 100_000):
    """(name, text) documents of one unpacked source, in a fixed order."""
    for path in files_of(root, source):
        rel = path.relative_to(root).as_posix()
        raw = _read(path)
        if source.fmt == "kjv_jsonl":
            chapters: dict[tuple, list[str]] = {}
            for line in raw.splitlines():
                if line.strip():
                    v = json.loads(line)
                    chapters.setdefault((v["book"], v["chapter"]), []).append(f"{v['verse']} {v['text']}")
            for (book, ch), verses in chapters.items():
                yield f"{rel}#{book}:{ch}", _clean(f"{book} {ch}\n\n" + "\n".join(verses))
            continue
        text = {"text": lambda s: s, "man": man_to_text, "html": html_to_text,
                "fortune": lambda s: re.sub(r"(?m)^%$", "", s)}[source.fmt](raw)
        for k, piece in enumerate(split_chunks(_clean(text), max_doc_chars)):
            yield (rel if k == 0 else f"{rel}#{k}"), piece


def is_english(text: str) -> bool:
    """Mostly ASCII letters: keeps English prose and code, drops translations."""
    letters = sum(c.isalpha() for c in text)
    ascii_letters = sum(c.isascii() and c.isalpha() for c in text)
    return letters > 0 and ascii_letters / letters >= 0.97


def dedup_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()
