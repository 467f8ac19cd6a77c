"""The on-disk format of a surrogates folder: ``manifest.json`` plus model files, each listed with
its sha256; reading verifies every file, writing is atomic and the manifest is written last.

    manifest.json                          schema_version, settings, library versions, and per
                                           surrogate: column, table, protocol, quality, files
    {space}/{source}/{metric}.ubj          mean model trees (xgboost UBJSON)
    {space}/{source}/{metric}.noise.ubj    noise-scale trees (stochastic metrics only)
    {space}/{source}/{metric}.npz          baseline coefficients, noise and interval quantiles

Nothing is a pickle: ``.npz`` files are read with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["SurrogateError", "MANIFEST", "SCHEMA_VERSION", "read_manifest", "read_verified",
           "write_model_files", "write_manifest", "remove_stale", "sha256"]

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
_MODEL_SUFFIXES = (".ubj", ".npz")


class SurrogateError(ValueError):
    """A surrogate that is missing, tampered with (checksum) or inconsistent with its manifest."""


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def read_manifest(root) -> dict | None:
    """The manifest of `root`, None if there is none; a SurrogateError if it is not one we read."""
    p = Path(root) / MANIFEST
    if not p.exists():
        return None
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise SurrogateError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("schema_version") != SCHEMA_VERSION:
        got = m.get("schema_version") if isinstance(m, dict) else None
        raise SurrogateError(f"{p}: schema_version {got!r}, this version reads {SCHEMA_VERSION}")
    return m


def read_verified(root, f: dict) -> bytes:
    """The bytes of a file the manifest lists as ``{"path", "sha256"}``, checked against the hash."""
    root = Path(root)
    try:
        blob = (root / f["path"]).read_bytes()
    except FileNotFoundError:
        raise SurrogateError(f"surrogate file {f['path']!r} listed in {root / MANIFEST} is missing; "
                             "refit with `hwgptbench fit-surrogates`") from None
    got = sha256(blob)
    if got != f["sha256"]:
        raise SurrogateError(f"surrogate file {f['path']!r}: sha256 {got[:12]}... does not match the "
                             f"manifest's {f['sha256'][:12]}... (modified or corrupted); refusing to load it")
    return blob


def write_model_files(out_dir, stem: str, files: dict[str, bytes]) -> dict[str, dict]:
    """Write ``{suffix: bytes}`` as ``{stem}{suffix}`` atomically; returns the manifest's ``files``
    entry: ``{"ubj": {"path", "sha256"}, "noise_ubj": ..., "npz": ...}``."""
    out = {}
    for suffix, blob in files.items():
        rel = f"{stem}{suffix}"
        _atomic_write(Path(out_dir) / rel, blob)
        out[suffix.lstrip(".").replace(".", "_")] = {"path": rel, "sha256": sha256(blob)}
    return out


def write_manifest(out_dir, manifest: dict) -> None:
    _atomic_write(Path(out_dir) / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())


def remove_stale(out_dir, spaces, keep: set[str]) -> None:
    """Delete model files under ``{space}/`` that the new manifest does not list."""
    out_dir = Path(out_dir)
    for space in spaces:
        folder = out_dir / space
        for p in folder.rglob("*") if folder.is_dir() else ():
            if p.is_file() and p.suffix in _MODEL_SUFFIXES and p.relative_to(out_dir).as_posix() not in keep:
                p.unlink()


def _atomic_write(path: Path, blob: bytes) -> None:
    import tempfile                            # writing only: serving never pays for the import

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
