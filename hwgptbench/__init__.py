"""hwgptbench: hardware-aware surrogate benchmark for GPT architecture search.

The core (spaces, cost model, tables, every surrogate query) needs only numpy, pandas and h5py;
fitting surrogates (xgboost, scipy), torch and the optimisation extras are imported lazily.
"""
from .space import SPACES, Arch, SearchSpace, as_arch, as_archs, get_space

__version__ = "0.1.0"
__all__ = ["Benchmark", "SPACES", "Arch", "SearchSpace", "as_arch", "as_archs", "get_space", "__version__"]


def __getattr__(name):
    # Benchmark (cost model, surrogates) is imported on first use: `import hwgptbench` stays light
    if name == "Benchmark":
        from .benchmark import Benchmark
        return Benchmark
    raise AttributeError(f"module 'hwgptbench' has no attribute {name!r}")
