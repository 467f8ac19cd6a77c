"""Hardware detection: which device this is and its hardware strings (docs/PROTOCOLS.md section 3).

A CPU device is its exact hardware, not its marketing name: two hosts that both say "AMD EPYC"
(or "Intel(R) Xeon(R) Processor") ranked the same architectures differently. Its **identity** is
the vendor, `lscpu` model name, family/model/stepping, logical CPU count and which of the flags
that select torch's kernels it has (`CPU_FLAGS`); its **fingerprint** is a short sha256 of that
identity. A GPU device's identity is its NVML name. Default device names read

    cpu_{brand}_f{family}m{model}_{n}c     e.g. cpu_xeon_f6m207_2c (Intel family 6 model 207, 2 CPUs)
    {gpu model}                            e.g. h100 ("NVIDIA H100 80GB HBM3"), h200 ("NVIDIA H200")

Stepping and flags are not in the name (it stays readable) but are in the identity, so a table is
never extended from a host that differs in any of them (`identity_differences`).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess

__all__ = ["CPU_FLAGS", "cpu_info", "gpu_info", "parse_cpu_identity", "fingerprint", "cpu_device_name",
           "gpu_device_name", "default_device_name", "device_name", "identity_of", "table_identity",
           "identity_differences",
           "describe_identity", "rapl_paths"]

# the flags that decide which kernels torch runs on a CPU: AVX2, AVX-512 and its bf16/vnni/fp16
# extensions, AMX tiles
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_bf16",
             "amx_int8")
# the identity fields parsed from `lscpu` (first name) or /proc/cpuinfo (second name)
_KEYS = {"vendor": ("Vendor ID", "vendor_id"), "model_name": ("Model name", "model name"),
         "family": ("CPU family", "cpu family"), "model": ("Model", "model"),
         "stepping": ("Stepping", "stepping"), "cpu_count": ("CPU(s)", None), "flags": ("Flags", "flags")}
_BRANDS = ("epyc", "xeon", "ryzen", "core", "neoverse", "graviton")


def cpu_info(lscpu_text: str | None = None) -> dict:
    """`lscpu` model name, counts and raw text, plus the parsed `identity` (from /proc/cpuinfo where
    lscpu is missing). Pass `lscpu_text` to describe another machine from its stored text."""
    info = {"cpu_model": platform.processor() or "unknown", "cpu_count": os.cpu_count() or 1}
    text = _run_lscpu() if lscpu_text is None else lscpu_text
    fields = _fields(text)
    if "Model name" in fields:
        info["cpu_model"] = fields["Model name"]
    for key, name in (("CPU(s)", "cpu_count"), ("Core(s) per socket", "cores_per_socket"),
                      ("Socket(s)", "sockets"), ("Thread(s) per core", "threads_per_core")):
        if fields.get(key, "").isdigit():
            info[name] = int(fields[key])
    info["vendor"] = fields.get("Vendor ID", "")
    info["hypervisor"] = fields.get("Hypervisor vendor", "")
    info["lscpu"] = text.strip()
    identity = parse_cpu_identity(text)
    if identity["family"] is None and lscpu_text is None:
        identity = parse_cpu_identity(_read("/proc/cpuinfo"))
    info["identity"] = identity
    return info


def parse_cpu_identity(text: str) -> dict:
    """The identity of a CPU from `lscpu` or /proc/cpuinfo text; None for what the text lacks."""
    fields = _fields(text)
    out = {}
    for name, keys in _KEYS.items():
        value = next((fields[k] for k in keys if k and k in fields), None)
        if name == "flags":
            value = [f for f in CPU_FLAGS if f in value.split()] if value is not None else None
        elif name in ("family", "model", "stepping", "cpu_count") and value is not None:
            value = int(value) if value.isdigit() else value
        out[name] = value
    if out["cpu_count"] is None and "processor" in fields:     # /proc/cpuinfo: one block per CPU
        out["cpu_count"] = len(re.findall(r"^processor\s*:", text, flags=re.M))
    return out


def fingerprint(identity: dict) -> str:
    """A stable short hash of an identity (16 hex digits of sha256 over its sorted JSON)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def cpu_device_name(identity: dict) -> str:
    """cpu_{brand}_f{family}m{model}_{n}c (the family/model part only where both are known)."""
    model = (identity.get("model_name") or "").lower()
    brand = next((b for b in _BRANDS if b in model), re.sub(r"\W+", "_", model).strip("_")[:16] or "cpu")
    fm = (f"_f{identity['family']}m{identity['model']}"
          if str(identity.get("family")).isdigit() and str(identity.get("model")).isdigit() else "")
    return f"cpu_{brand}{fm}_{identity.get('cpu_count') or os.cpu_count() or 1}c"


def gpu_device_name(gpu_name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100', 'NVIDIA H200' -> 'h200'; otherwise the name in snake case."""
    m = re.search(r"\b([A-Z]\d{2,4})\b", gpu_name)
    return m.group(1).lower() if m else re.sub(r"\W+", "_", gpu_name.lower()).strip("_") or "gpu"


def gpu_info() -> dict:
    """NVIDIA GPU name, memory and driver from NVML (nvidia-ml-py), else {}."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return {}
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    name = pynvml.nvmlDeviceGetName(h)
    drv = pynvml.nvmlSystemGetDriverVersion()
    mem = pynvml.nvmlDeviceGetMemoryInfo(h).total
    return {"gpu_name": name.decode() if isinstance(name, bytes) else name,
            "driver": drv.decode() if isinstance(drv, bytes) else drv,
            "gpu_memory_MB": mem / 2 ** 20}


def default_device_name(kind: str) -> str:
    """A device name from this machine's hardware: e.g. 'h100', 'cpu_xeon_f6m207_2c'."""
    if kind == "cuda":
        return gpu_device_name(gpu_info().get("gpu_name", ""))
    return cpu_device_name(cpu_info()["identity"])


def device_name(identity: dict) -> str:
    """The default device name of an identity (see the module docstring)."""
    return gpu_device_name(identity["gpu_name"]) if "gpu_name" in identity else cpu_device_name(identity)


def identity_of(hardware: dict, backend: str) -> dict:
    """The device identity that a hardware record (this host's, or a table's provenance) describes.
    Records written before identities were stored: parsed from their `lscpu` text (CPU) or NVML
    name (GPU); {} when nothing tells."""
    if "identity" in hardware:
        return hardware["identity"]
    if backend == "cuda":
        name = hardware.get("gpu", {}).get("gpu_name")
        return {"gpu_name": name} if name else {}
    cpu = hardware.get("cpu", {})
    ident = cpu.get("identity") or parse_cpu_identity(cpu.get("lscpu", ""))
    return ident if ident["model_name"] is not None and ident["family"] is not None else {}


def table_identity(provenance: dict) -> dict:
    """The identity of the device that measured a profile table (see `identity_of`)."""
    return identity_of(provenance.get("hardware", {}), provenance.get("protocol_key", {}).get("backend", "cpu"))


def identity_differences(recorded: dict, host: dict) -> dict:
    """{field: (recorded, host)} for every identity field that differs; a field the recorded
    identity lacks counts as different (an unknown machine is not assumed to be this one)."""
    fields = sorted(set(recorded) | set(host))
    return {f: (recorded.get(f), host.get(f)) for f in fields if recorded.get(f) != host.get(f)}


def describe_identity(identity: dict) -> str:
    """One line naming the hardware, for error messages and logs."""
    if not identity:
        return "unknown hardware"
    if "gpu_name" in identity:
        return identity["gpu_name"]
    return (f"{identity.get('model_name')} (family {identity.get('family')} model {identity.get('model')} "
            f"stepping {identity.get('stepping')}, {identity.get('cpu_count')} CPUs, "
            f"flags {' '.join(identity.get('flags') or []) or 'none of ' + '/'.join(CPU_FLAGS)})")


def rapl_paths() -> list[str]:
    """Readable RAPL package energy counters (µJ), [] where none (e.g. most VMs)."""
    base = "/sys/class/powercap"
    out = []
    if os.path.isdir(base):
        for d in sorted(os.listdir(base)):
            p = os.path.join(base, d, "energy_uj")
            if re.fullmatch(r"intel-rapl:\d+", d) and os.access(p, os.R_OK):
                out.append(p)
    return out


def _run_lscpu() -> str:
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _fields(text: str) -> dict:
    """'key: value' lines of lscpu or /proc/cpuinfo text; the first occurrence of each key wins
    (/proc/cpuinfo repeats every key once per CPU)."""
    out = {}
    for k, v in re.findall(r"^([^:\n]+?)[ \t]*:[ \t]*(.*)$", text, flags=re.M):
        out.setdefault(k.strip(), v.strip())
    return out
