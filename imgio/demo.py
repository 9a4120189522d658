"""The main job: write a microscopy-like stack, read it back, report what happened."""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

__all__ = ["make_stack", "run_demo"]


def make_stack(shape=(64, 512, 512), seed: int = 0) -> np.ndarray:
    """A uint16 stack with structure: bright blobs ("nuclei") on a smooth background."""
    rng = np.random.default_rng(seed)
    z, y, x = shape
    zz = np.arange(z, dtype=np.float32)[:, None, None]
    yy = np.arange(y, dtype=np.float32)[None, :, None]
    xx = np.arange(x, dtype=np.float32)[None, None, :]
    vol = np.empty(shape, np.float32)
    vol[...] = 100 + 20 * np.sin(yy / 37.0) * np.cos(xx / 53.0)
    for _ in range(40):
        cz, cy, cx = rng.uniform(0, z), rng.uniform(0, y), rng.uniform(0, x)
        r = rng.uniform(6, 18)
        zs = slice(max(0, int(cz - 2 * r)), int(cz + 2 * r) + 1)
        ys = slice(max(0, int(cy - 3 * r)), int(cy + 3 * r) + 1)
        xs = slice(max(0, int(cx - 3 * r)), int(cx + 3 * r) + 1)
        d2 = (((zz[zs] - cz) * 2) ** 2 + (yy[:, ys] - cy) ** 2 + (xx[..., xs] - cx) ** 2)
        vol[zs, ys, xs] += 3000 * np.exp(-d2 / (2 * r * r))
    vol += rng.normal(0, 5, size=shape).astype(np.float32)
    return np.clip(vol, 0, 65535).astype(np.uint16)


def run_demo(directory: str | None = None, shape=(64, 512, 512), out=print) -> dict:
    """Write a stack as TIFF, read it back through ``imgio.v3`` (and ``imgio.v2``), report.

    Returns the figures it printed, as a dict.
    """
    import imgio.v3 as iio

    tmp = None
    if directory is None:
        tmp = tempfile.TemporaryDirectory(prefix="imgio-demo-")
        directory = tmp.name
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "demo_stack.tif")
    try:
        vol = make_stack(shape)
        spacing = (2.0, 0.325, 0.325)
        t0 = time.perf_counter()
        iio.imwrite(path, vol, spacing=spacing, axes="ZYX", units="um") \
            if _has_physical_write() else iio.imwrite(path, vol)
        t_write = time.perf_counter() - t0
        props = iio.improps(path)
        t0 = time.perf_counter()
        back = iio.imread(path)
        t_read = time.perf_counter() - t0
        if not np.array_equal(back, vol):
            raise RuntimeError("the stack read back differs from the one written")
        report = {
            "file": path, "shape": props.shape, "dtype": str(props.dtype),
            "axes": props.axes, "spacing": props.spacing, "units": props.units,
            "file_size_mb": os.path.getsize(path) / 1e6,
            "write_mb_s": vol.nbytes / 1e6 / t_write, "read_mb_s": vol.nbytes / 1e6 / t_read,
        }
        try:
            import imgio.v2 as v2
            t0 = time.perf_counter()
            back2 = v2.volread(path)
            report["v2_volread_mb_s"] = vol.nbytes / 1e6 / (time.perf_counter() - t0)
            if not np.array_equal(back2, vol):
                raise RuntimeError("v2.volread returned different data")
        except ImportError:
            pass
        out(f"imgio demo: wrote and read back {path}")
        out(f"  shape    {report['shape']}  dtype {report['dtype']}  axes {report['axes']}")
        out(f"  spacing  {report['spacing']}  units {report['units']}")
        out(f"  file     {report['file_size_mb']:.1f} MB")
        out(f"  write    {report['write_mb_s']:.0f} MB/s")
        out(f"  read     {report['read_mb_s']:.0f} MB/s (imgio.v3.imread)")
        if "v2_volread_mb_s" in report:
            out(f"  volread  {report['v2_volread_mb_s']:.0f} MB/s (imgio.v2.volread)")
        out("  round trip: identical pixels")
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def _has_physical_write() -> bool:
    """Whether the TIFF plugin writes spacing/axes/units (added with the microscopy work)."""
    from .plugins.tiff import plugin as tp
    return getattr(tp, "WRITES_PHYSICAL", False)
