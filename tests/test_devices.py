"""Device identity and the profiler's refusal to mix hardware. The truths: lscpu and /proc/cpuinfo
texts of real machines (this development host, family 6 model 207; the host that measured the
shipped cpu_xeon_2c tables, family 6 model 106, whose lscpu text the table stores)."""
import shutil
from pathlib import Path

import pytest

from hwgptbench.profiling import devices
from hwgptbench.tables import read_table

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "s" / "cpu_xeon_2c.h5"
FLAGS_207 = ("fpu vme de pse tsc msr pae sse sse2 ht syscall nx lm avx f16c fma hypervisor bmi1 avx2 "
             "avx512f avx512dq avx512cd avx512bw avx512vl avx_vnni avx512_bf16 avx512vbmi avx512_vnni "
             "avx512_bitalg avx512_vpopcntdq serialize tsxldtrk avx512_fp16 arch_capabilities")
LSCPU_207 = f"""Architecture:                            x86_64
CPU op-mode(s):                          32-bit, 64-bit
CPU(s):                                  2
On-line CPU(s) list:                     0,1
Vendor ID:                               GenuineIntel
Model name:                              Intel(R) Xeon(R) Processor
CPU family:                              6
Model:                                   207
Thread(s) per core:                      1
Core(s) per socket:                      2
Socket(s):                               1
Stepping:                                2
Flags:                                   {FLAGS_207}
Hypervisor vendor:                       KVM
NUMA node0 CPU(s):                       0,1
"""
CPUINFO_207 = "".join(f"""processor\t: {i}
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Processor
stepping\t: 2
cpu MHz\t\t: 2300.000
flags\t\t: {FLAGS_207}

""" for i in range(2))
IDENTITY_207 = {"vendor": "GenuineIntel", "model_name": "Intel(R) Xeon(R) Processor", "family": 6, "model": 207,
                "stepping": 2, "cpu_count": 2,
                "flags": ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16"]}


def test_identity_from_lscpu_and_proc_cpuinfo():
    assert devices.parse_cpu_identity(LSCPU_207) == IDENTITY_207
    assert devices.parse_cpu_identity(CPUINFO_207) == IDENTITY_207
    amx = LSCPU_207.replace("avx512_fp16", "avx512_fp16 amx_bf16 amx_tile amx_int8")
    assert devices.parse_cpu_identity(amx)["flags"][-3:] == ["amx_tile", "amx_bf16", "amx_int8"]
    assert devices.cpu_info(LSCPU_207)["identity"] == IDENTITY_207
    assert devices.parse_cpu_identity("")["family"] is None


def test_fingerprint_is_stable_and_sensitive():
    fp = devices.fingerprint(IDENTITY_207)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert devices.fingerprint(dict(reversed(list(IDENTITY_207.items())))) == fp
    for field, value in (("model", 106), ("stepping", 6), ("cpu_count", 4), ("flags", ["avx2"]),
                         ("model_name", "Intel(R) Xeon(R) Processor @ 2.80GHz")):
        assert devices.fingerprint({**IDENTITY_207, field: value}) != fp, field


def test_cpu_device_names():
    assert devices.cpu_device_name(IDENTITY_207) == "cpu_xeon_f6m207_2c"
    epyc = devices.parse_cpu_identity("CPU(s): 2\nModel name: AMD EPYC 9B45\nCPU family: 26\nModel: 2\n")
    assert devices.cpu_device_name(epyc) == "cpu_epyc_f26m2_2c"
    assert devices.cpu_device_name({**IDENTITY_207, "family": None}) == "cpu_xeon_2c"


@pytest.mark.parametrize("name,expected", [("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H200", "h200"),
                                           ("NVIDIA A100-SXM4-80GB", "a100")])
def test_gpu_device_names(name, expected):
    assert devices.gpu_device_name(name) == expected
    assert devices.device_name({"gpu_name": name}) == expected


def test_shipped_table_identity_parsed_from_its_lscpu_text():
    """The shipped table predates stored identities: its lscpu text says Ice Lake (model 106)."""
    ident = devices.identity_of(read_table(SHIPPED).provenance["hardware"], "cpu")
    assert (ident["family"], ident["model"], ident["stepping"]) == (6, 106, 6)
    assert ident["model_name"] == "Intel(R) Xeon(R) Processor @ 2.80GHz"
    assert devices.cpu_device_name(ident) == "cpu_xeon_f6m106_2c" != devices.cpu_device_name(IDENTITY_207)
    diff = devices.identity_differences(ident, IDENTITY_207)
    assert {"model", "stepping", "model_name", "flags"} <= set(diff) and "family" not in diff
    assert devices.identity_differences({}, IDENTITY_207)       # unknown hardware is not this host


def test_gpu_plan_merge_uses_the_same_identity():
    """Merging returned rows into a table checks hardware with the same identity as the profiler."""
    from hwgptbench.gpu_plan.merge import _same_hardware
    from hwgptbench.tables import TableError
    shipped = read_table(SHIPPED)
    here = read_table(SHIPPED)
    here.provenance = {**here.provenance, "hardware": {"cpu": devices.cpu_info(LSCPU_207)}}
    _same_hardware(shipped, read_table(SHIPPED))
    with pytest.raises(TableError, match="hardware: .*model 207.*model 106"):
        _same_hardware(shipped, here)


def test_gpu_identity():
    old = {"cpu": {"lscpu": LSCPU_207}, "gpu": {"gpu_name": "NVIDIA H100 80GB HBM3"}}
    assert devices.identity_of(old, "cuda") == {"gpu_name": "NVIDIA H100 80GB HBM3"}
    assert devices.identity_differences({"gpu_name": "NVIDIA H100 PCIe"}, devices.identity_of(old, "cuda"))


# ---- the profiler refuses tables of other hardware ------------------------------------------------

torch = pytest.importorskip("torch")
TINY = ["profile", "--space", "s", "--backend", "cpu", "--seq", "8", "--warmup", "0", "--repeats", "1",
        "--threads", "1", "--quiet"]


def _cli(args):
    from hwgptbench.cli import main
    return main(args)


def _host(monkeypatch, lscpu_text):
    """Make the profiler see a host described by lscpu_text."""
    from hwgptbench.profiling import run
    monkeypatch.setattr(run, "cpu_info", lambda: devices.cpu_info(lscpu_text))


def _shipped_copy(tmp_path):
    dest = tmp_path / "s" / "cpu_xeon_2c.h5"
    dest.parent.mkdir()
    shutil.copy(SHIPPED, dest)
    return dest


def _shipped_protocol(t):
    p = t.provenance["protocol"]
    return ["profile", "--space", "s", "--backend", "cpu", "--threads", str(p["threads"]), "--seq", str(p["seq"]),
            "--batch", str(p["batch"]), "--device", "cpu_xeon_2c", "--quiet"]


def test_profiler_refuses_the_shipped_table_on_a_model_207_host(tmp_path, monkeypatch, capsys):
    dest = _shipped_copy(tmp_path)
    before = dest.read_bytes()
    t = read_table(dest)
    _host(monkeypatch, LSCPU_207)
    args = _shipped_protocol(t) + ["--data-dir", str(tmp_path), "-n", str(len(t) + 1)]
    assert _cli(args) == 2
    err = capsys.readouterr().err
    assert "model 106" in err and "model 207" in err and "cpu_xeon_f6m207_2c" in err
    assert "nothing was overwritten" in err and dest.read_bytes() == before
    # the same table on the hardware that measured it is accepted (nothing left to measure)
    _host(monkeypatch, t.provenance["hardware"]["cpu"]["lscpu"])
    assert _cli(args[:-1] + [str(len(t))]) == 0
    assert dest.read_bytes() == before


def test_profiler_on_this_host_and_the_shipped_table(tmp_path, capsys):
    """Unpatched: refused unless this host is the table's own hardware (family 6 model 106)."""
    dest = _shipped_copy(tmp_path)
    t = read_table(dest)
    same = not devices.identity_differences(devices.identity_of(t.provenance["hardware"], "cpu"),
                                            devices.cpu_info()["identity"])
    rc = _cli(_shipped_protocol(t) + ["--data-dir", str(tmp_path), "-n", str(len(t) + (0 if same else 1))])
    assert rc == (0 if same else 2), capsys.readouterr().err


def test_new_tables_record_identity_and_refuse_other_flags(tmp_path, monkeypatch, capsys):
    out = tmp_path / "t.h5"
    _host(monkeypatch, LSCPU_207)
    assert _cli(TINY + ["-n", "1", "--table", str(out)]) == 0
    hw = read_table(out).provenance["hardware"]
    assert hw["identity"] == IDENTITY_207 and hw["fingerprint"] == devices.fingerprint(IDENTITY_207)
    assert read_table(out).source == "cpu_xeon_f6m207_2c"          # named from the hardware
    before = out.read_bytes()
    _host(monkeypatch, LSCPU_207.replace("avx512_fp16", "avx512_fp16 amx_tile amx_bf16"))
    assert _cli(TINY + ["-n", "2", "--table", str(out)]) == 2
    assert "differ in flags" in capsys.readouterr().err and out.read_bytes() == before


def test_thread_count_is_part_of_the_cpu_protocol_key(tmp_path, capsys):
    from hwgptbench.profiling.run import default_protocol
    assert "threads" in default_protocol("cpu").key() and "threads" not in default_protocol("cuda").key()
    out = str(tmp_path / "t.h5")
    assert _cli(TINY + ["-n", "1", "--device", "testcpu", "--table", out]) == 0
    before = Path(out).read_bytes()
    assert _cli(TINY + ["-n", "2", "--threads", "2", "--device", "testcpu", "--table", out]) == 2
    assert "threads" in capsys.readouterr().err and Path(out).read_bytes() == before
