"""The Ray backend of `sweep`, run for real on a local Ray instance that the test starts (slow:
starting Ray takes ~10 s), against the process backend for the same seeds."""
import os

import pandas as pd
import pytest

pytest.importorskip("moocore")
pytest.importorskip("pymoo")

import hwgptbench  # noqa: E402
from hwgptbench.moo.runner import sweep  # noqa: E402

# an exact problem and one answered by a fitted surrogate (loaded anew in each Ray worker)
PROBLEMS = ["s:-params,flops", "s:-params,latency_ms@cpu_xeon_2c"]


@pytest.mark.slow
def test_ray_backend_equals_the_process_backend():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    a = sweep(PROBLEMS, ["rs", "nsga2"], 2, 20, workers=2, progress=False)         # process backend
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)             # a local Ray instance

    def where():
        import os

        import hwgptbench
        return os.getpid(), hwgptbench.__file__

    try:
        pid, module = ray.get(ray.remote(where).remote())
        assert pid != os.getpid() and module == hwgptbench.__file__   # a Ray worker, this checkout's code
        b = sweep(PROBLEMS, ["rs", "nsga2"], 2, 20, backend="ray", progress=False)
        assert ray.cluster_resources().get("CPU") == 2                # sweep used the instance started here
    finally:
        ray.shutdown()
    assert len(b) == 2 * 2 * 2 * 20 and set(b["problem"]) == set(PROBLEMS)
    pd.testing.assert_frame_equal(a.drop(columns="optimizer_s"), b.drop(columns="optimizer_s"))
