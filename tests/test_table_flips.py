"""Every shipped table, bit-flipped: each damaged copy is read in its own process under a time
limit, and ends within seconds with a clear TableError naming the file or with the unchanged table
(issue 21: a flipped index used to make read_table build the profiling set up to the damaged
value, without bound, before the checksum was checked)."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
TABLES = sorted(DATA.glob("*/*.h5"))

READER = textwrap.dedent("""
    import sys
    import numpy as np
    from hwgptbench.tables import TableError, read_table
    original = read_table(sys.argv[1])
    for path in sys.argv[2:]:
        try:
            t = read_table(path)
        except TableError as e:
            assert path in str(e), e
            print("error", flush=True)
            continue
        same = (t.arch_ids == original.arch_ids and np.array_equal(t.index, original.index)
                and all(np.array_equal(t.raw[m], original.raw[m], equal_nan=True) for m in original.raw))
        print("same" if same else "DIFFERENT " + path, flush=True)
""")


def _flips(path: Path, n: int, seed: int, out: Path) -> list[Path]:
    """n copies with one random bit flipped, plus one with bit 40 of the first profiling-set
    index flipped (a position of ~10^12: what made the old reader build a huge profiling set)."""
    import h5py
    blob = path.read_bytes()
    rng = np.random.default_rng(seed)
    files = []
    with h5py.File(path, "r") as f:
        offset = f["index"].id.get_offset()             # contiguous int64, little-endian
    if offset is not None:
        b = bytearray(blob)
        b[offset + 5] ^= 1                              # bit 40 of index[0]
        files.append(out / f"{path.parent.name}_{path.stem}_index.h5")
        files[-1].write_bytes(bytes(b))
    for k in range(n):
        bit = int(rng.integers(len(blob) * 8))
        b = bytearray(blob)
        b[bit // 8] ^= 1 << (bit % 8)
        f = out / f"{path.parent.name}_{path.stem}_{k}.h5"
        f.write_bytes(bytes(b))
        files.append(f)
    return files


def _check(path, n, seed, tmp_path, limit_s):
    files = _flips(path, n, seed, tmp_path)
    try:
        out = subprocess.run([sys.executable, "-c", READER, str(path), *map(str, files)], capture_output=True,
                             text=True, timeout=limit_s)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{path}: reading {n} bit-flipped copies took over {limit_s} s (a hang?); "
                    f"answers so far: {e.stdout!r}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert "DIFFERENT" not in out.stdout and len([x for x in lines if x in ("error", "same")]) == len(files), out.stdout


@pytest.mark.parametrize("path", TABLES, ids=[f"{p.parent.name}/{p.name}" for p in TABLES])
def test_bit_flips_of_every_shipped_table_end_quickly_and_clearly(path, tmp_path):
    _check(path, 6, 20261204, tmp_path, limit_s=60)


@pytest.mark.slow
@pytest.mark.parametrize("path", TABLES, ids=[f"{p.parent.name}/{p.name}" for p in TABLES])
def test_many_bit_flips_of_every_shipped_table(path, tmp_path):
    _check(path, 200, 7, tmp_path, limit_s=600)
