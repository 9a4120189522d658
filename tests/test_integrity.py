"""Issue 15: a damaged, hostile or huge file never yields wrong data, a bypassed
guard or a crash; writes never crash and never commit by accident.

Every check compares with the intact file: a truncated read either raises an
imgio error or returns exactly what the intact file gives.  Memory-hungry
checks run in child processes under ``RLIMIT_AS`` (see tests/harness).
"""
from __future__ import annotations

import gc
import re
import io
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

import imgio.v2 as v2
import imgio.v3 as iio
from imgio.core import limits
from imgio.core.request import PARTIAL_SUFFIX, clean_stale_partials
from imgio.errors import (CorruptFileError, ExternalReferenceError, FormatError,
                          ImageTooLargeError, PartialReadWarning, WriteError)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.harness import integrity  # noqa: E402

SEEDS = integrity.seeds()


# -- 1 + 6: all or nothing, for every format and every API --------------------------------
@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_truncated_reads_raise_or_equal_the_intact_file(fmt):
    figures = integrity.truncations(budget=10, only={fmt})
    for api, fig in figures.items():
        assert not fig.losses, f"{api} returned wrong data for cut {fmt}: {fig.losses[:5]}"
        assert not fig.escapes, f"{api} raised a non-imgio error for cut {fmt}: {fig.escapes[:3]}"
    assert sum(f.tried for f in figures.values()) > 50


@pytest.mark.parametrize("kw", [dict(compression="zlib"), dict(tile=(32, 32)), {},
                                dict(imagej=True), dict(ome=True)])
def test_eight_page_tiff_cut_in_half_names_the_missing_page(tmp_path, kw):
    stack = np.arange(8 * 64 * 64, dtype=np.uint16).reshape(8, 64, 64)
    buf = io.BytesIO()
    tifffile.imwrite(buf, stack, **kw)
    path = tmp_path / "cut.tif"
    path.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    for call in (lambda: iio.imread(path), lambda: v2.volread(path), lambda: v2.mimread(path),
                 lambda: list(iio.imiter(path)), lambda: iio.improps(path),
                 lambda: list(v2.get_reader(path))):
        with pytest.raises(CorruptFileError, match=re.escape(str(path))):
            call()
    with pytest.raises(CorruptFileError, match=r"page \d of 8|declares 8 pages|past the end"):
        iio.improps(path)


def test_allow_partial_returns_what_is_there_with_a_warning(tmp_path):
    stack = np.arange(8 * 64 * 64, dtype=np.uint16).reshape(8, 64, 64)
    buf = io.BytesIO()
    tifffile.imwrite(buf, stack, compression="zlib")
    path = tmp_path / "cut.tif"
    path.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    with pytest.warns(PartialReadWarning, match="allow_partial"):
        got = iio.imread(path, allow_partial=True)
    np.testing.assert_array_equal(got, stack[0])  # the pages before the cut, exactly


def test_truncated_gif_raises_not_fewer_frames(tmp_path):
    data, _ = SEEDS["gif"]
    path = tmp_path / "cut.gif"
    path.write_bytes(data[:int(len(data) * 0.6)])
    with pytest.raises(CorruptFileError, match="truncated GIF"):
        v2.mimread(path)
    with pytest.raises(CorruptFileError):
        len(v2.get_reader(path))
    with pytest.warns(PartialReadWarning):
        props = iio.improps(path, allow_partial=True)
    assert 0 < props.shape[0] < 6


def test_imgio_bugs_are_not_relabelled_as_damage(tmp_path, monkeypatch):
    from imgio.plugins.tiff import plugin as plugin
    path = tmp_path / "ok.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint8), photometric="minisblack")

    def broken(self, *args, **kwargs):
        return self.no_such_attribute  # an AttributeError raised by imgio itself

    monkeypatch.setattr(plugin.TifffilePlugin, "_read_series", broken)
    with pytest.raises(AttributeError):
        iio.imread(path, fast=False)
    monkeypatch.setattr(plugin.TifffilePlugin, "_properties", lambda *a: undefined_name)  # noqa: F821
    with pytest.raises(NameError):
        iio.improps(path)


def test_strip_offset_inside_the_header_is_damage(tmp_path):
    path = tmp_path / "zero.tif"
    tifffile.imwrite(path, np.arange(2 * 16 * 16, dtype=np.uint8).reshape(2, 16, 16),
                     photometric="minisblack", compression="zlib")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[1].tags["StripOffsets"]
        raw[tag.valueoffset:tag.valueoffset + 4] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="inside the header"):
        iio.imread(path)


# -- 2: one guard everywhere ------------------------------------------------------------------
def test_default_limit_leaves_headroom_below_available_memory(monkeypatch):
    monkeypatch.delenv("IMGIO_MAX_BYTES", raising=False)
    monkeypatch.setattr(limits, "MAX_BYTES", None)
    limits._AVAILABLE_CACHE[:] = [-1e9, 0]
    cap = limits.max_bytes()
    assert 0 < cap <= limits.available_memory()
    assert cap < os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.parametrize("make", ["npy", "npz", "hdf5"])
def test_every_api_guards_npy_npz_hdf5(tmp_path, make, monkeypatch):
    monkeypatch.setenv("IMGIO_MAX_BYTES", str(10 ** 5))
    data = np.zeros((4, 200, 200), np.uint8)  # 160 kB, over the 100 kB limit
    path = tmp_path / f"x.{make if make != 'hdf5' else 'h5'}"
    if make == "npy":
        np.save(path, data)
    elif make == "npz":
        np.savez(path, data)
    else:
        with h5py.File(path, "w") as f:
            f["data"] = data
    calls = [lambda: iio.imread(path), lambda: v2.volread(path),
             lambda: v2.mimread(path, memtest=False)]
    if make != "hdf5":  # an HDF5 reader reads one 40 kB frame at a time: within the limit
        calls += [lambda: list(iio.imiter(path)), lambda: v2.imread(path),
                  lambda: v2.get_reader(path).get_data(0)]
    for call in calls:
        with pytest.raises(ImageTooLargeError, match=re.escape(str(path))):
            call()
    assert iio.imread(path, max_bytes=False).shape == data.shape


@pytest.fixture(scope="module")
def bomb_results():
    return integrity.bombs()


def test_bombs_never_pass_the_guard_in_a_child_under_rlimit_as(bomb_results):
    assert bomb_results["tried"] >= 50
    others = [b for b in bomb_results["bypasses"] if b[0] != "tiff-tile-bomb"]
    assert not others, others


def test_tile_bomb_is_refused_on_the_tifffile_path(tmp_path):
    path = integrity._bomb_files(str(tmp_path))["tiff-tile-bomb"]
    for call in (lambda: iio.imread(path, fast=False), lambda: iio.imread(path, page=0),
                 lambda: iio.imread(path, index=...)):
        with pytest.raises(CorruptFileError, match="expand far beyond its image"):
            call()


def test_tile_bomb_is_refused_on_the_fast_path(bomb_results):
    tiles = [b for b in bomb_results["bypasses"] if b[0] == "tiff-tile-bomb"]
    assert not tiles, tiles


def test_a_large_legitimate_zlib_tiff_is_not_refused(tmp_path):
    # 64 MiB of zeros compress about 1000:1; the ratio alone is not damage
    path = tmp_path / "zeros.tif"
    tifffile.imwrite(path, np.zeros((4, 4096, 4096), np.uint8), compression="zlib",
                     photometric="minisblack")
    assert path.stat().st_size < 2 << 20
    assert iio.imread(path).shape == (4, 4096, 4096)
    assert iio.imread(path, fast=False).shape == (4, 4096, 4096)


# -- 3: nothing outside what the user named -----------------------------------------------------
def test_hdf5_external_storage_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"password" * 64)
    path = tmp_path / "ext.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", shape=(8, 64), dtype="u1", external=[(str(secret), 0, 512)])
    for call in (lambda: iio.imread(path), lambda: v2.imread(path), lambda: iio.improps(path),
                 lambda: list(iio.imiter(path))):
        with pytest.raises(ExternalReferenceError, match="secret.bin"):
            call()
    got = iio.imread(path, allow_external=True)
    assert got.tobytes()[:8] == b"password"


def test_hdf5_virtual_dataset_and_external_link_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.arange(64, dtype=np.uint8).reshape(8, 8)
    vpath = tmp_path / "virtual.h5"
    layout = h5py.VirtualLayout(shape=(8, 8), dtype=np.uint8)
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(8, 8))
    with h5py.File(vpath, "w") as f:
        f.create_virtual_dataset("data", layout)
    with pytest.raises(ExternalReferenceError, match="virtual"):
        iio.imread(vpath)
    np.testing.assert_array_equal(iio.imread(vpath, allow_external=True),
                                  np.arange(64).reshape(8, 8))
    lpath = tmp_path / "link.h5"
    with h5py.File(lpath, "w") as f:
        f["data"] = h5py.ExternalLink(str(other), "data")
    with pytest.raises(ExternalReferenceError, match="external link"):
        iio.imread(lpath, dataset="data")


# -- 4: writes never crash and never commit by accident --------------------------------------
def test_full_disk_writes_raise_naming_the_target_and_leave_nothing():
    result = integrity.full_disks()
    assert not result["crashes"], result["crashes"]  # HDF5 used to die with SIGSEGV
    assert not result["wrong_errors"], result["wrong_errors"]
    assert result["temp_left"] == 0


def test_kill_9_never_corrupts_the_target_and_stale_temps_are_cleaned():
    result = integrity.kills(runs=2)
    assert not result["corrupt"], result["corrupt"]
    assert result["temp_left"] == 0


@pytest.mark.parametrize("ext", [".tif", ".h5", ".npz"])
def test_a_collected_writer_discards_instead_of_committing(tmp_path, ext):
    target = tmp_path / f"good{ext}"
    good = [np.full((8, 8), i, np.uint8) for i in range(10)]
    v2.mimwrite(target, good)

    def loop():
        w = v2.get_writer(target)
        for i in range(3):
            w.append_data(np.full((8, 8), 50 + i, np.uint8))
        raise RuntimeError("the acquisition failed")

    with pytest.raises(RuntimeError):
        loop()
    gc.collect()
    np.testing.assert_array_equal(np.stack(v2.mimread(target)), np.stack(good))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(PARTIAL_SUFFIX)]


def test_partial_files_are_never_read_and_stale_ones_are_cleaned(tmp_path):
    stale = tmp_path / f".x.tif.999999999.abc{PARTIAL_SUFFIX}"
    tifffile.imwrite(stale, np.zeros((4, 4), np.uint8))
    live = tmp_path / f".y.tif.{os.getpid()}.abc{PARTIAL_SUFFIX}"
    live.write_bytes(b"")
    with pytest.raises(FormatError, match="unfinished imgio write"):
        iio.imread(stale)
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.ones((4, 4), np.uint8))
    assert iio.imread(tmp_path).shape == (2, 4, 4)  # folder stacks skip them
    assert clean_stale_partials(str(tmp_path)) == [str(stale)]
    assert live.exists()  # a live process's temporary file stays


def test_commit_fsyncs_only_when_durable(tmp_path, monkeypatch):
    # atomic by default (temp file + rename, no fsync); durability is opt-in (issue 21)
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    monkeypatch.delenv("IMGIO_DURABLE", raising=False)
    iio.imwrite(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
    assert calls == []
    monkeypatch.setenv("IMGIO_DURABLE", "1")
    iio.imwrite(tmp_path / "b.tif", np.zeros((4, 4), np.uint8))
    assert len(calls) == 2  # the temporary file before the rename, the folder after it
    calls.clear()
    monkeypatch.setenv("IMGIO_DURABLE", "0")
    iio.imwrite(tmp_path / "c.tif", np.zeros((4, 4), np.uint8))
    assert calls == []
    assert (iio.imread(tmp_path / "b.tif") == 0).all()


def test_write_errors_name_the_target(tmp_path):
    # a folder nobody may create files in, even root: sysfs
    target = Path("/sys/imgio-test.tif")
    with pytest.raises(WriteError, match=re.escape(str(target))) as info:
        iio.imwrite(target, np.zeros((4, 4), np.uint8))
    assert PARTIAL_SUFFIX not in str(info.value)
    assert isinstance(info.value, OSError) and info.value.errno is not None


# -- issue 23: the suite's own memory --------------------------------------------------------------
def test_fuzz_modules_run_under_the_small_limit():
    assert limits.max_bytes() == 256 << 20


def test_peak_rss_is_measured():
    from tests.conftest import peak_rss
    peaks = peak_rss()
    assert peaks["self"] > 10 << 20


def _ome_pair(folder: Path, second: str) -> tuple[Path, np.ndarray]:
    """A 2-file OME-TIFF whose XML (in a.ome.tif) names ``second`` for planes 3-5."""
    import uuid
    data = np.arange(6 * 8 * 8, dtype=np.uint16).reshape(6, 8, 8)
    names = ("a.ome.tif", second)
    uuids = [f"urn:uuid:{uuid.uuid4()}" for _ in names]
    tiffdata = "".join(
        f'<TiffData IFD="0" PlaneCount="3" FirstZ="{first}" FirstC="0" FirstT="0">'
        f'<UUID FileName="{name}">{uid}</UUID></TiffData>'
        for name, uid, first in zip(names, uuids, (0, 3)))
    xml = ('<?xml version="1.0" encoding="UTF-8"?>'
           '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
           f'UUID="{uuids[0]}"><Image ID="Image:0"><Pixels ID="Pixels:0" '
           'DimensionOrder="XYZCT" Type="uint16" SizeX="8" SizeY="8" SizeZ="6" SizeC="1" '
           'SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
           f'{tiffdata}</Pixels></Image></OME>')
    for name, part, desc in zip(names, (data[:3], data[3:]), (xml.encode(), None)):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        with tifffile.TiffWriter(folder / name, ome=False) as tw:
            tw.write(part, metadata=None, photometric="minisblack", description=desc)
    return folder / names[0], data


def test_ome_references_outside_the_folder_are_refused(tmp_path):
    inside, data = _ome_pair(tmp_path / "in", "b.ome.tif")
    np.testing.assert_array_equal(iio.imread(inside), data)  # same folder: one dataset
    outside, data = _ome_pair(tmp_path / "ds", "../elsewhere/b.ome.tif")
    for call in (lambda: iio.imread(outside), lambda: iio.improps(outside),
                 lambda: v2.volread(outside)):
        with pytest.raises(ExternalReferenceError, match="elsewhere"):
            call()
    np.testing.assert_array_equal(iio.imread(outside, allow_external=True), data)


def test_folder_symlinks_out_of_the_folder_are_refused(tmp_path):
    stack = tmp_path / "stack"
    stack.mkdir()
    tifffile.imwrite(stack / "z0.tif", np.zeros((4, 4), np.uint8))
    tifffile.imwrite(tmp_path / "outside.tif", np.ones((4, 4), np.uint8))
    (stack / "z1.tif").symlink_to(tmp_path / "outside.tif")
    with pytest.raises(ExternalReferenceError, match="z1.tif"):
        iio.imread(stack)
    with pytest.raises(ExternalReferenceError):
        list(iio.imiter(stack))
    assert iio.imread(stack, allow_external=True).shape == (2, 4, 4)
