"""Where the shipped tables and surrogates are, in a source checkout and in an installed package.

`HWGPTBENCH_DATA` / `HWGPTBENCH_SURROGATES` override the locations (e.g. for freshly measured data).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _shipped(env: str, package: str, folder: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    local = REPO / folder
    if (REPO / "pyproject.toml").exists() and local.is_dir():
        return local                      # source checkout or editable install
    import importlib.util                  # normal install: hwgptbench._data / hwgptbench._surrogates
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{folder}: not found in the source tree nor installed as {package}")
    return Path(list(spec.submodule_search_locations)[0])


def data_dir() -> Path:
    return _shipped("HWGPTBENCH_DATA", "hwgptbench._data", "data")


def surrogates_dir() -> Path:
    return _shipped("HWGPTBENCH_SURROGATES", "hwgptbench._surrogates", "surrogates")


def is_shipped_data(path) -> bool:
    """Whether `path` is the package's own data folder (which scratch and rehearsal writes avoid)."""
    return Path(path).resolve() == data_dir().resolve()


def is_shipped_surrogates(path) -> bool:
    """Whether `path` is the package's own surrogates folder."""
    return Path(path).resolve() == surrogates_dir().resolve()
