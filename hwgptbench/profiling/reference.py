"""Reference measurements made by another profiler, brought into device tables unchanged.

    hwgptbench import-reference ../shared/reference_data/h100_2026-11-22.json   # -> data/{s,m,l}/h100.h5

The file (docs/PROTOCOLS.md section 5, "Reference measurements") holds rows of random
architectures, identified by id (no profiling-set position: `tables.NO_INDEX`), each with its raw
repeats (`latency_ms` 10 forwards, `energy_J` 3 windows, `memory_MB` the peak) and its `position` in
the measuring run. Values enter unchanged; every table says in its provenance who measured them
(not hwgptbench's profiler), on what, under which protocol, with the file's caveats verbatim and
its sha256. Rows already in a table are never duplicated or replaced; a table of another protocol
or GPU is refused (the same rules as `gpu-plan merge`).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import re
from pathlib import Path

import numpy as np

from ..space import Arch
from ..tables import NO_INDEX, Table
from .devices import gpu_device_name
from .protocol import Protocol

__all__ = ["import_reference", "reference_tables"]

_METRICS = {"latency_ms": "ms", "energy_J": "J", "memory_MB": "MB"}
_REQUIRED = ("what", "measured", "protocol", "model", "caveats", "rows")
_MAX_BYTES = 64 * 2 ** 20          # a reference file is a few hundred rows, not gigabytes
# "2026-11-22, one lent machine: NVIDIA H100 80GB HBM3, 580.159.04, 700.00 W, 1980 MHz; torch 2.11.0+cu130"
_MEASURED = re.compile(r"(?P<date>\d{4}-\d\d-\d\d), [^:]*: (?P<gpu>[^,]+), (?P<driver>[\d.]+), "
                       r"(?P<power>[\d.]+) W, (?P<clock>\d+) MHz; torch (?P<torch>\S+)")


def reference_tables(path, command: str | None = None) -> dict[str, Table]:
    """space -> Table of the reference file at `path` (checked; nothing written)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FileNotFoundError(f"reference: cannot read {str(path)!r} ({e.strerror or e})") from None
    if len(data) > _MAX_BYTES:
        raise ValueError(f"reference: {str(path)!r} is {len(data)} bytes; a reference file is at most {_MAX_BYTES}")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"reference: {str(path)!r} is not a JSON reference file ({e})") from None
    missing = [k for k in _REQUIRED if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ValueError(f"reference: {str(path)!r} lacks {missing}; expected the fields {list(_REQUIRED)}")
    m = _MEASURED.fullmatch(doc["measured"])
    if m is None:
        raise ValueError(f"reference: measured: {doc['measured']!r} does not say 'date, ...: GPU, driver, "
                         "power W, clock MHz; torch version'")
    gpu = m["gpu"]
    device = gpu_device_name(gpu)
    if not device:
        raise ValueError(f"reference: measured: no device name for GPU {gpu!r}")
    protocol = Protocol("cuda", batch=8, seq=1024, dtype="bfloat16", warmup=5, repeats=10,
                        energy_window_s=0.3, energy_windows=3)
    if "batch 8 x 1024" not in doc["protocol"] or "bf16" not in doc["protocol"] or "10 timed" not in doc["protocol"]:
        raise ValueError("reference: protocol: expected bf16, batch 8 x 1024 tokens and 10 timed forwards "
                         "(docs/PROTOCOLS.md section 4)")
    from .run import git_commit
    provenance = {
        "device": device,
        "hardware": {"gpu": {"gpu_name": gpu, "driver": m["driver"], "power_limit_W": float(m["power"]),
                             "clock_MHz": int(m["clock"])}, "identity": {"gpu_name": gpu}},
        "protocol": json.loads(json.dumps(protocol.__dict__)), "protocol_key": protocol.key(),
        "measured_by": "an independent profiler (not hwgptbench/profiling/), implementing docs/PROTOCOLS.md "
                       "sections 2 and 4; hwgptbench imported its values unchanged",
        "third_party": True,
        "reference": {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
                      **{k: doc[k] for k in ("what", "measured", "protocol", "model", "caveats")},
                      "position": doc.get("position"), "torch": m["torch"], "date": m["date"]},
        "notes": ("rows are random architectures identified by id (no profiling-set position); extra/position "
                  "is each row's place in the measuring run; " + doc["caveats"]),
        "runs": [{"command": command or f"hwgptbench import-reference {path.name}", "git_commit": git_commit(),
                  "imported_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}],
    }
    by_space: dict[str, list] = {}
    for r, row in enumerate(doc["rows"]):
        where = f"reference: rows[{r}]"
        if not isinstance(row, dict) or "id" not in row:
            raise ValueError(f"{where}: expected an object with an 'id'")
        try:
            arch = Arch.from_id(row["id"])
        except (ValueError, TypeError) as e:
            raise ValueError(f"{where}: id: {row['id']!r} is not an architecture id ({e})") from None
        if arch.id != row["id"]:
            raise ValueError(f"{where}: id: {row['id']!r} is not written canonically ({arch.id!r})")
        for k in ("position", *_METRICS):
            if k not in row:
                raise ValueError(f"{where} ({row['id']}): lacks {k!r}")
        by_space.setdefault(arch.space, []).append((arch.id, row))
    tables = {}
    for space, rows in sorted(by_space.items()):
        t = Table("profile", space, device, [], np.zeros(0, np.int64), {}, dict(_METRICS),
                  {k: "measured" for k in _METRICS}, json.loads(json.dumps(provenance)))
        for aid, row in rows:
            raw = {}
            for k in _METRICS:
                v = np.atleast_1d(np.asarray(row[k], dtype=np.float64))
                if v.ndim != 1 or not len(v) or not np.isfinite(v).all() or (v < 0).any():
                    raise ValueError(f"reference: row {aid}: {k}: expected finite values >= 0, got {row[k]!r}")
                raw[k] = v
            pos = row["position"]
            if isinstance(pos, bool) or not isinstance(pos, int) or pos < 0:
                raise ValueError(f"reference: row {aid}: position: expected an int >= 0, got {pos!r}")
            t.append(aid, NO_INDEX, raw, {"position": np.int64(pos)})
        if doc.get("rows_per_space", {}).get(space, len(t)) != len(t):
            raise ValueError(f"reference: rows_per_space says {doc['rows_per_space'][space]} {space} rows, "
                             f"the file holds {len(t)}")
        t.validate()
        tables[space] = t
    return tables


def import_reference(path, data_dir="data", command: str | None = None, log=print) -> dict:
    """Write the reference file's rows into `data_dir/{space}/{device}.h5` (new tables, or the rows an
    existing table of the same protocol and GPU lacks), as a lease's tables are merged
    (`gpu_plan.merge.extend_tables`: writer locks, every check before any write). Returns
    {table path: {"added": n, "rows": n}}."""
    from ..gpu_plan.merge import extend_tables
    tables = reference_tables(path, command)
    return extend_tables({Path(data_dir) / space / f"{t.source}.h5": t for space, t in tables.items()}, log)
