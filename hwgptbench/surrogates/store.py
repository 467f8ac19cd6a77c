"""The on-disk format of a surrogates folder: ``manifest.json`` plus model files, each listed with
its sha256; reading verifies everything, writing never leaves a folder that does not load.

    manifest.json                                 schema_version, settings, library versions, per
                                                  surrogate: column, table, protocol, quality, files;
                                                  and `manifest_sha256`, its own checksum
    {space}/{source}/{metric}.{sha12}.ubj         mean model trees (xgboost UBJSON)
    {space}/{source}/{metric}.{sha12}.noise.ubj   noise-scale trees (stochastic metrics only)
    {space}/{source}/{metric}.{sha12}.npz         baseline coefficients, noise and interval quantiles

Model files are named after the first 12 hex digits of their sha256, so a refit writes new files
beside the old ones, then the manifest (atomically), then removes the files no manifest lists: a
fit that fails at any point leaves the old manifest and every file it lists.

On read: the manifest's own checksum (the sha256 of its canonical JSON without that field); every
entry's key, column, device, space, table and file names agree with each other; every file path is
confined to the folder (no absolute paths, no ``..``, no symlink out); every file's sha256. A
damaged or edited folder is one `SurrogateError` naming the file and what is wrong. Nothing is a
pickle: ``.npz`` files are read with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath

__all__ = ["SurrogateError", "MANIFEST", "SCHEMA_VERSION", "read_manifest", "read_verified",
           "write_model_files", "write_manifest", "remove_stale", "sha256", "manifest_checksum"]

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
_MODEL_SUFFIXES = (".ubj", ".npz")
_FILE_KINDS = {"ubj": ".ubj", "noise_ubj": ".noise.ubj", "npz": ".npz"}     # manifest key -> suffix
_NAME = r"[A-Za-z0-9_]+"


class SurrogateError(ValueError):
    """A surrogate that is missing, tampered with (checksum) or inconsistent with its manifest."""


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of `manifest` without its checksum."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def read_manifest(root) -> dict | None:
    """The manifest of `root`, checked (module docstring); None if there is none."""
    p = Path(root) / MANIFEST
    if not p.exists():
        return None
    try:
        m = json.loads(p.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SurrogateError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("schema_version") != SCHEMA_VERSION:
        got = m.get("schema_version") if isinstance(m, dict) else None
        raise SurrogateError(f"{p}: schema_version {got!r}, this version reads {SCHEMA_VERSION}")
    stored = m.get("manifest_sha256")
    if stored is None:
        raise SurrogateError(f"{p}: no manifest_sha256 (written by an older version); refit with "
                             "`hwgptbench fit-surrogates`")
    try:
        got = manifest_checksum(m)
    except ValueError as e:                     # NaN/inf in the JSON: never written by us
        raise SurrogateError(f"{p}: {e}") from None
    if got != stored:
        raise SurrogateError(f"{p}: manifest_sha256 {str(stored)[:12]}... does not match its content "
                             f"({got[:12]}...): the manifest was edited or damaged; refusing to serve it")
    if not isinstance(m.get("surrogates"), dict) or not isinstance(m.get("unavailable", []), list):
        raise SurrogateError(f"{p}: 'surrogates' must be an object and 'unavailable' a list")
    for key, entry in m["surrogates"].items():
        _check_entry(p, key, entry)
    return m


def _check_entry(p: Path, key: str, e) -> None:
    """An entry's fields agree with each other and with its file names (an edited manifest cannot
    serve one device's model under another's column)."""
    from ..columns import Column
    from ..space import SPACES

    def bad(what):
        raise SurrogateError(f"{p}: surrogate {key!r}: {what}")

    if not isinstance(e, dict):
        bad(f"expected an object, got {type(e).__name__}")
    fields = ("space", "source", "metric", "column", "table", "kind", "files", "inputs")
    missing = [f for f in fields if f not in e]
    if missing:
        bad(f"lacks {missing}")
    space, source, metric = e["space"], e["source"], e["metric"]
    if space not in SPACES or not all(isinstance(v, str) and re.fullmatch(_NAME, v) for v in (source, metric)):
        bad(f"space {space!r}, source {source!r}, metric {metric!r}: allowed: spaces {sorted(SPACES)}, "
            "names of letters, digits and '_'")
    if key != f"{space}/{source}/{metric}":
        bad(f"key does not match its space/source/metric {space}/{source}/{metric}")
    device = {"profile": source, "perplexity": None}.get(e["kind"], ...)
    if device is ... or e.get("device") != device:
        bad(f"kind {e['kind']!r} with device {e.get('device')!r} and source {source!r}: a 'profile' "
            "surrogate's device is its source, a 'perplexity' one has none")
    try:
        want = str(Column.parse(metric).on(device))
    except ValueError as err:
        bad(str(err))
    if e["column"] != want:
        bad(f"column {e['column']!r} does not match metric {metric!r} on device {device!r} ({want!r})")
    if e["table"] != f"{space}/{source}.h5":
        bad(f"table {e['table']!r} is not {space}/{source}.h5")
    files = e["files"]
    if not isinstance(files, dict) or "ubj" not in files or "npz" not in files or set(files) - set(_FILE_KINDS):
        bad(f"files {sorted(files) if isinstance(files, dict) else files!r}: expected ubj, npz and "
            "optionally noise_ubj")
    for kind, f in files.items():
        if not isinstance(f, dict) or not isinstance(f.get("path"), str) or \
                not re.fullmatch(r"[0-9a-f]{64}", str(f.get("sha256"))):
            bad(f"files.{kind}: expected {{'path': str, 'sha256': 64 hex digits}}, got {f!r}")
        name = f"{space}/{source}/{metric}.{f['sha256'][:12]}{_FILE_KINDS[kind]}"
        if f["path"] != name:
            bad(f"files.{kind}: path {f['path']!r} is not {name!r} (files are named after their "
                "surrogate and sha256, inside the surrogates folder)")


def read_verified(root, f: dict) -> bytes:
    """The bytes of a file the manifest lists as ``{"path", "sha256"}``, confined to `root` and
    checked against the hash."""
    root = Path(root)
    rel = PurePosixPath(f["path"])
    path = root.joinpath(*rel.parts)
    if rel.is_absolute() or ".." in rel.parts or not path.resolve().is_relative_to(root.resolve()):
        raise SurrogateError(f"surrogate file {f['path']!r} listed in {root / MANIFEST} lies outside "
                             f"{root} (absolute, '..' or a symlink out); refusing to read it")
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise SurrogateError(f"surrogate file {f['path']!r} listed in {root / MANIFEST} is missing; "
                             "refit with `hwgptbench fit-surrogates`") from None
    except OSError as e:
        raise SurrogateError(f"surrogate file {f['path']!r}: cannot be read ({e.strerror or e})") from None
    got = sha256(blob)
    if got != f["sha256"]:
        raise SurrogateError(f"surrogate file {f['path']!r}: sha256 {got[:12]}... does not match the "
                             f"manifest's {f['sha256'][:12]}... (modified or corrupted); refusing to load it")
    return blob


def write_model_files(out_dir, stem: str, files: dict[str, bytes]) -> dict[str, dict]:
    """Write ``{suffix: bytes}`` as ``{stem}.{sha12}{suffix}`` atomically (beside any older
    version); returns the manifest's ``files`` entry: ``{"ubj": {"path", "sha256"}, ...}``."""
    from ..files import write_bytes           # writing only: serving never pays for the import

    out = {}
    for suffix, blob in files.items():
        digest = sha256(blob)
        rel = f"{stem}.{digest[:12]}{suffix}"
        write_bytes(Path(out_dir) / rel, blob)
        out[suffix.lstrip(".").replace(".", "_")] = {"path": rel, "sha256": digest}
    return out


def write_manifest(out_dir, manifest: dict) -> dict:
    """Add `manifest_sha256` and write the manifest atomically; returns it."""
    from ..files import write_bytes

    manifest = {**manifest, "manifest_sha256": manifest_checksum(manifest)}
    write_bytes(Path(out_dir) / MANIFEST, (json.dumps(manifest, indent=1, allow_nan=False) + "\n").encode())
    return manifest


def remove_stale(out_dir, spaces, keep: set[str]) -> None:
    """Delete model files under ``{space}/`` that the new manifest does not list."""
    out_dir = Path(out_dir)
    for space in spaces:
        folder = out_dir / space
        for p in folder.rglob("*") if folder.is_dir() else ():
            if p.is_file() and p.suffix in _MODEL_SUFFIXES and p.relative_to(out_dir).as_posix() not in keep:
                p.unlink()
