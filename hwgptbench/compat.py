"""`HWGPT`: HW-GPT-Bench's API surface on top of hwgptbench, so its users change one import.

    from hwgptbench.compat import HWGPT      # instead of: from hwgpt.api import HWGPT
    api = HWGPT(search_space="s")
    api.set_arch(api.sample_arch())
    api.query()                               # {"perplexity": ..., "latencies": {device: ...}, ...}
    api.query(metric="latencies", device="cpu_xeon_2c")

Same methods, argument names, metric keys and nested dict shapes as HW-GPT-Bench (HWG). What
differs, on purpose:

* **Devices**: only devices with measured tables in this package are served (`api.devices`).
  HWG's 13 names (a100, a40, h100, rtx2080, rtx3080, a6000, v100, P100, cpu_xeon_silver,
  cpu_xeon_gold, cpu_amd_7502, cpu_amd_7513, cpu_amd_7452) are served only where we have a
  table under the same name (e.g. `h100` once GPU tables land); asking for any other device is a
  ValueError listing the served ones.
* **Units**: ``latencies`` are ms per forward and ``energies`` J per forward, each under the
  device's own profiling protocol (`Benchmark(space).devices()[name]["protocol"]`: batch,
  sequence, dtype); HWG's surrogates were trained on its own protocol and units, so values are
  not interchangeable across the two benchmarks. ``float16_memory`` / ``bfloat16_memory`` are
  HW-GPT-Bench's own memory MLPs (columns ``memory_MB_hwgpt_float16`` / ``..._bfloat16``, served
  unchanged from its release), so they equal what HWG returns. ``flops`` are forward FLOPs at batch
  1, sequence 1024 (FlopCounterMode convention); ``params`` the exact parameter count.
* **Values**: the surrogate's predicted median measurement (HWG's default quantile surrogates
  return a random quantile); pass ``noise=True, seed=...`` to the constructor for seeded noisy
  draws instead. ``perplexity`` with ``predictor="mlp"`` (HWG's default, and ours) is HW-GPT-Bench's
  own perplexity MLP (column ``perplexity_hwgpt``, the same value HWG returns); ``predictor=
  "supernet"`` is our own supernet's perplexity (column ``perplexity``, or its last training
  fidelity), an error where none has been trained. Neither ever stands in for the other.
* **An extra key**, ``decode_latencies`` ({device: ms per generated token}): decode with a KV cache,
  which HWG does not measure (README, "Prefill and decode"); served where a device has `decode_ms`.
* ``predictor`` chooses the perplexity source (above); ``surrogate_type`` is accepted and ignored:
  there is one surrogate per metric. ``use_supernet_surrogate=True`` (evaluating the supernet
  itself) is not offered here.
"""
from __future__ import annotations

from collections.abc import Mapping

from .benchmark import Benchmark
from .columns import Column, resolve
from .space import as_arch
from .validation import check_bool, check_seed

__all__ = ["HWGPT", "HWG_DEVICES", "HWG_METRICS"]

HWG_DEVICES = ("a100", "a40", "h100", "rtx2080", "rtx3080", "a6000", "v100", "P100",
               "cpu_xeon_silver", "cpu_xeon_gold", "cpu_amd_7502", "cpu_amd_7513", "cpu_amd_7452")
# HWG metric key -> our metric name (None: exact, not device-bound)
_DEVICE_METRICS = {"latencies": "latency_ms", "energies": "energy_J",
                   "decode_latencies": "decode_ms"}      # an extra key HWG does not have
_EXACT = ("flops", "params", "float16_memory", "bfloat16_memory")
HWG_METRICS = ("perplexity",) + tuple(_DEVICE_METRICS) + _EXACT
# HWG's own predictors, served unchanged (hwgptbench.sources.hwgpt)
_HWG_COLUMNS = {"perplexity": "perplexity_hwgpt", "float16_memory": "memory_MB_hwgpt_float16",
                "bfloat16_memory": "memory_MB_hwgpt_bfloat16"}
PREDICTORS = ("mlp", "supernet")


class HWGPT:
    """HW-GPT-Bench-compatible facade over `hwgptbench.Benchmark` (see the module docstring)."""

    def __init__(self, search_space: str = "s", use_supernet_surrogate: bool = False,
                 base_path=None, noise: bool = False, seed=None, surrogates=None):
        if check_bool(use_supernet_surrogate, "use_supernet_surrogate"):
            raise ValueError("use_supernet_surrogate: True is not supported by hwgptbench.compat "
                             "(it evaluates HW-GPT-Bench's own supernet checkpoint); use False")
        import numpy as np

        self.noise = check_bool(noise, "noise")
        self._rng = np.random.default_rng(check_seed(seed))
        self.bench = Benchmark(search_space, surrogates=surrogates)
        self.search_space = self.bench.space
        self.search_space_name = self.search_space.name
        self.config = None
        self._arch = None
        self.base_path = base_path            # accepted for compatibility; data ship in the package

    # ---- what is served ---------------------------------------------------------------------------
    @property
    def devices(self) -> list[str]:
        return sorted(self.bench.devices())

    @property
    def device_list(self) -> list[str]:        # HWG's attribute name
        return self.devices

    # ---- architectures ----------------------------------------------------------------------------
    def sample_arch(self) -> dict:
        """A random architecture as HWG's config dict (also made the current one, as HWG did)."""
        arch = self.bench.space.sample(1, seed=self._rng)[0]
        self.set_arch(arch.to_hwg_dict())
        return dict(self.config)

    def set_arch(self, config: dict) -> None:
        """Make `config` (an HWG dict, id string or Arch) the current architecture; a config that
        is refused leaves the previous one (arch and config both) in place."""
        arch = as_arch(config, self.bench.space)
        new = dict(config) if isinstance(config, Mapping) else arch.to_hwg_dict()
        self._arch, self.config = arch, new

    # ---- queries ----------------------------------------------------------------------------------
    def query(self, metric: str | None = None, device: str | None = None, predictor=None,
              hw_metric: str | None = None, **ignored) -> dict:
        """HWG's result dict: ``{"perplexity": float, "latencies": {device: ms}, "energies":
        {device: J}, "flops": int, "params": int, "float16_memory": MB, "bfloat16_memory": MB}``
        plus ``decode_latencies`` ({device: ms per token}) where decode is measured,
        restricted to `metric` and/or `device` when given (`hw_metric` is HWG's older name)."""
        if self._arch is None:
            raise ValueError("Please set arch config before querying (set_arch or sample_arch)")
        predictor = "mlp" if predictor is None else predictor
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor: unknown {predictor!r}; allowed: {list(PREDICTORS)} ('mlp': "
                             "HW-GPT-Bench's perplexity MLP; 'supernet': our own supernet's perplexity)")
        metric = metric if metric is not None else hw_metric
        for field, v in (("metric", metric), ("device", device)):
            if v is not None and not isinstance(v, str):
                raise TypeError(f"{field}: expected a str or None, got {v!r} ({type(v).__name__})")
        if metric is not None and metric not in HWG_METRICS:
            raise ValueError(f"metric: unknown {metric!r}; allowed: {list(HWG_METRICS)}")
        if device is not None and device not in self.devices:
            hwg = " (an HW-GPT-Bench device without a table here)" if device in HWG_DEVICES else ""
            raise ValueError(f"device: {device!r} is not served{hwg}; available: {self.devices}")
        wanted = [metric] if metric is not None else list(HWG_METRICS)
        devices = [device] if device is not None else self.devices
        cols = self.bench.columns()
        out: dict = {}
        for m in wanted:
            if m in _DEVICE_METRICS:
                have = [d for d in devices if str(Column(_DEVICE_METRICS[m], d)) in cols]
                if not have:
                    if metric is None:
                        continue                      # 'all metrics': serve what exists
                    raise ValueError(f"metric: {m!r} is not available on {devices} "
                                     f"(devices with {m}: {self._devices_with(m)})")
                vals = self._values([str(Column(_DEVICE_METRICS[m], d)) for d in have])
                out[m] = dict(zip(have, vals))
            elif m == "perplexity" and predictor == "supernet":
                col = resolve("perplexity", cols)          # or its last training fidelity
                if col is None:
                    if metric is None:
                        continue
                    raise ValueError(f"predictor: 'supernet' perplexity (our own supernet's) has no "
                                     f"surrogate for space {self.search_space_name!r} yet (no perplexity "
                                     "table fitted); predictor='mlp' serves HW-GPT-Bench's perplexity MLP")
                out[m] = self._values([col])[0]
            elif m in _HWG_COLUMNS:                        # perplexity (mlp), float16/bfloat16_memory
                if _HWG_COLUMNS[m] not in cols:
                    if metric is None:
                        continue
                    raise ValueError(f"metric: {m!r} (HW-GPT-Bench's predictor) is not served for "
                                     f"space {self.search_space_name!r}")
                out[m] = self._values([_HWG_COLUMNS[m]])[0]
            elif m == "flops":
                out[m] = self.get_flops()
            else:                                     # params
                out[m] = self.get_params()
        return out

    def get_flops(self) -> int:
        return int(self._values(["flops"])[0])

    def get_params(self) -> int:
        return int(self._values(["params"])[0])

    # ---- internals --------------------------------------------------------------------------------
    def _values(self, columns) -> list[float]:
        if self._arch is None:
            raise ValueError("Please set arch config before querying (set_arch or sample_arch)")
        seed = int(self._rng.integers(2 ** 63)) if self.noise else None
        return [float(v) for v in self.bench.evaluate([self._arch], columns, noise=self.noise, seed=seed)[0]]

    def _devices_with(self, m: str) -> list[str]:
        cols = map(Column.parse, self.bench.columns())
        return sorted(c.device for c in cols if c.metric == _DEVICE_METRICS[m] and c.device and c.fidelity is None)
