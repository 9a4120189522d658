"""Out-of-core: the mean of a file larger than the memory of the dask workers (issue 7).

A uint16 stack is generated block by block with ``imgio.lazy.write_dask`` (so
the generator never holds it either), then ``imgio.to_dask(path).mean()`` runs
on a ``dask.distributed.LocalCluster`` of 2 worker processes, 1 thread each,
``memory_limit=256MiB`` per worker.  Reported in ``extra_info`` and printed:
file size, chunks, wall time, throughput, and each worker's peak resident
memory (``VmHWM`` of the worker process, which includes its imports).

CI size: 64 x 512 x 512 (32 MiB).  ``IMGIO_BENCH_FULL=1``: 512 x 1024 x 1024
(1 GiB, four times the memory of one worker, twice that of both), as TIFF and
as HDF5::

    IMGIO_BENCH_FULL=1 pytest benchmarks/test_bench_lazy.py -s --benchmark-disable
"""
from __future__ import annotations

import os
import sys
import time

import dask
import dask.array as da
import distributed
import numpy as np
import pytest

import imgio
from imgio.lazy import write_dask

# the workers cannot import this file (pytest loads it by path): ship its
# functions by value rather than by module reference
import cloudpickle  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])

FULL = os.environ.get("IMGIO_BENCH_FULL") == "1"
SHAPE = (512, 1024, 1024) if FULL else (64, 512, 512)
MEMORY_LIMIT = "256MiB"
MiB = 2**20


def _block(block_info=None):
    """Deterministic pseudo-random uint16 frames, seeded by the block's position."""
    info = block_info[None]
    (z0, z1), _, _ = info["array-location"]
    rng = np.random.default_rng(z0)
    return rng.integers(0, 4096, info["chunk-shape"], dtype=np.uint16)


def _source():
    rows = (16,) * (SHAPE[0] // 16) + ((SHAPE[0] % 16,) if SHAPE[0] % 16 else ())
    return da.map_blocks(_block, dtype=np.uint16, chunks=(rows,) + tuple((s,) for s in SHAPE[1:]),
                         meta=np.empty((0, 0, 0), np.uint16))


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ooc")
    src = _source()
    expected = float(src.mean(dtype="f8").compute(scheduler="threads"))
    paths = {"tiff": str(d / "big.tif"), "hdf5": str(d / "big.h5")}
    with dask.config.set(scheduler="threads"):
        write_dask(paths["tiff"], src)
        write_dask(paths["hdf5"], src, dataset="data")
    return paths, expected


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=MEMORY_LIMIT, dashboard_address=":0",
                                  silence_logs=40) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _worker_peak_rss() -> int:
    """Peak resident memory of this worker process.

    ``VmHWM`` (Linux) belongs to the process's own address space; ``ru_maxrss``
    survives ``exec`` and so starts at the RSS of the process that spawned the
    worker (here pytest, holding other benchmarks' data), which says nothing
    about the worker.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


@pytest.mark.parametrize("fmt", ["tiff", "hdf5"])
@pytest.mark.benchmark(group="dask mean out-of-core")
def test_imgio_dask_mean_out_of_core(benchmark, client, big_files, fmt):
    paths, expected = big_files
    path = paths[fmt]
    kw = {"dataset": "data"} if fmt == "hdf5" else {}
    workers_before = set(client.scheduler_info()["workers"])
    darr = imgio.to_dask(path, **kw)
    assert darr.shape == SHAPE
    timings = []

    def run():
        t0 = time.perf_counter()
        value = float(darr.mean(dtype="f8").compute())
        timings.append(time.perf_counter() - t0)
        return value

    mean = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    assert mean == pytest.approx(expected, rel=1e-12)
    # no worker was killed for using too much memory
    assert set(client.scheduler_info()["workers"]) == workers_before
    peaks = client.run(_worker_peak_rss)
    limit = dask.utils.parse_bytes(MEMORY_LIMIT)
    peak = max(peaks.values())
    size = os.path.getsize(path)
    benchmark.extra_info.update(nbytes=int(darr.nbytes), peak_bytes=int(peak),
                                file_bytes=size, memory_limit=limit,
                                chunk=list(darr.chunksize), n_chunks=darr.npartitions)
    print(f"\n[{fmt}] mean of {darr.nbytes / MiB:.0f} MiB ({SHAPE} uint16, file "
          f"{size / MiB:.0f} MiB, {darr.npartitions} chunks of {darr.chunksize}) on 2 workers "
          f"with memory_limit={MEMORY_LIMIT}: {timings[-1]:.2f} s, "
          f"{darr.nbytes / MiB / timings[-1]:.0f} MiB/s; worker peak RSS "
          + ", ".join(f"{v / MiB:.0f} MiB" for v in peaks.values()))
    assert peak < limit
