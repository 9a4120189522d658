"""The command line, run in-process, and the progress helper."""
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import imgio.v3 as iio
from imgio import cli
from imgio.cli import main
from imgio.core import registry
from imgio.progress import Progress, make_progress, track

SPACING = (2.0, 0.5, 0.25)


def _stack(shape=(6, 32, 48), seed=0):
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 200, size=shape, dtype=np.uint16)
    vol[:, 8:16, 10:30] += 3000  # a bright box, so pictures have structure
    return vol


@pytest.fixture
def stack_tif(tmp_path):
    path = tmp_path / "stack.tif"
    vol = _stack()
    iio.imwrite(path, vol, spacing=SPACING, axes="ZYX", units="um")
    return path, vol




# -- demo ----------------------------------------------------------------------------------
def test_demo_writes_and_reports(tmp_path, capsys):
    assert main(["demo", str(tmp_path), "--shape", "8,64,64"]) == 0
    out = capsys.readouterr().out
    assert "(8, 64, 64)" in out and "identical pixels" in out
    vol = iio.imread(tmp_path / "demo_stack.tif")
    assert vol.shape == (8, 64, 64) and vol.dtype == np.uint16
    assert vol.std() > 10  # structure, not a constant image


def test_demo_bad_shape_is_one_line(capsys):
    assert main(["demo", "--shape", "8,64"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imgio demo: error:") and "Z,Y,X" in err and err.count("\n") == 1


# -- errors --------------------------------------------------------------------------------
def test_errors_are_one_line(capsys):
    assert main(["demo", "/proc/definitely/not/here", "--shape", "2,4,4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imgio demo: error:") and "Traceback" not in err


def test_missing_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.tif"
    assert main(["info", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "No such file" in err and str(missing) in err


def test_multi_line_messages_become_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(bytes(range(7, 250)) * 4)
    assert main(["convert", str(garbage), str(tmp_path / "out.npy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imgio convert: error: NoPluginError:") and err.count("\n") == 1
    assert not (tmp_path / "out.npy").exists()


def test_debug_shows_the_exception(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "info", str(tmp_path / "missing.tif")])
    with pytest.raises(FileNotFoundError):
        main(["--debug", "convert", str(tmp_path / "missing.tif"), str(tmp_path / "x.npy")])


def test_usage_error_returns_2(capsys):
    assert main(["no-such-command"]) == 2
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err
    assert main(["--help"]) == 0


def test_python_dash_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "imgio", "formats"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "tifffile" in result.stdout
    result = subprocess.run([sys.executable, "-m", "imgio", "info", "missing.tif"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr


# -- info ------------------------------------------------------------------------------------
def test_info_text(stack_tif, capsys):
    path, vol = stack_tif
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tifffile" in out and "(6, 32, 48)" in out and "uint16" in out
    assert "ZYX" in out and "Z 2 um" in out and "X 0.25 um" in out
    assert "kB" in out and "compression  none" in out


def test_info_json_for_scripts(stack_tif, tmp_path, capsys):
    path, vol = stack_tif
    npy = tmp_path / "plain.npy"
    np.save(npy, vol[0])
    assert main(["info", "--json", str(path), str(npy)]) == 0
    reports = json.loads(capsys.readouterr().out)
    tif, arr = reports
    assert tif["format"] == "tifffile" and tif["shape"] == [6, 32, 48]
    assert tif["dtype"] == "uint16" and tif["axes"] == "ZYX"
    assert tif["spacing"] == pytest.approx(list(SPACING)) and tif["units"] == ["um"] * 3
    assert tif["n_images"] == 1 and tif["compression"] == "none"
    assert tif["file_size"] == path.stat().st_size
    assert arr["format"] == "npy" and arr["shape"] == [32, 48] and arr["spacing"] is None


def test_info_reports_compression_and_images(tmp_path, capsys):
    path = tmp_path / "z.tif"
    iio.imwrite(path, [_stack((4, 16, 16)), _stack((4, 16, 16), 1)], compression="zlib")
    report = cli.info(path)
    assert report["compression"] in ("zlib", "adobe_deflate", "deflate")
    assert report["n_images"] == 2


def test_info_continues_after_a_bad_file(stack_tif, tmp_path, capsys):
    path, _ = stack_tif
    assert main(["info", str(tmp_path / "nope.tif"), str(path)]) == 1
    captured = capsys.readouterr()
    assert "nope.tif" in captured.err and "(6, 32, 48)" in captured.out


def test_info_folder_of_slices(tmp_path, capsys):
    folder = tmp_path / "slices"
    folder.mkdir()
    vol = _stack((5, 16, 20))
    for i, plane in enumerate(vol):
        iio.imwrite(folder / f"z{i:03d}.tif", plane)
    for target in (str(folder), str(folder / "z*.tif")):
        code = main(["info", "--json", target])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        (report,) = json.loads(captured.out)
        assert report["shape"] == [5, 16, 20]
        assert report["file_size"] == sum(p.stat().st_size for p in folder.iterdir())


# -- convert -------------------------------------------------------------------------------
def test_convert_tiff_keeps_pixels_and_spacing(stack_tif, tmp_path, capsys):
    path, vol = stack_tif
    out = tmp_path / "copy.tif"
    assert main(["convert", str(path), str(out)]) == 0
    captured = capsys.readouterr()
    assert "6 frames" in captured.out and "(6, 32, 48)" in captured.out
    assert captured.err == ""  # not a terminal: no progress bar
    np.testing.assert_array_equal(iio.imread(out), vol)
    props = iio.improps(out)
    assert props.axes == "ZYX"
    assert props.spacing == pytest.approx(SPACING) and props.units == ("um",) * 3


def test_convert_compressed(stack_tif, tmp_path, capsys):
    path, vol = stack_tif
    out = tmp_path / "small.tif"
    assert main(["convert", str(path), str(out), "--compression", "zlib", "-q"]) == 0
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(iio.imread(out), vol)
    assert cli.info(out)["compression"] in ("zlib", "adobe_deflate", "deflate")


def test_convert_streams_frame_by_frame(stack_tif, tmp_path, monkeypatch):
    path, vol = stack_tif
    from imgio.plugins.tiff.plugin import TifffilePlugin
    seen = []
    original = TifffilePlugin.append

    def spy(self, frame, *, spacing=None, axes=None, units=None, **kw):
        given = dict(kw, spacing=spacing, axes=axes, units=units)
        seen.append((np.asarray(frame).shape, sorted(k for k, v in given.items() if v)))
        return original(self, frame, **given)

    monkeypatch.setattr(TifffilePlugin, "append", spy)
    monkeypatch.setattr(cli._convert, "STREAM_ABOVE", 0)  # as for a stack larger than memory
    calls = []
    result = cli.convert(path, tmp_path / "out.tif", progress=lambda d, t: calls.append((d, t)))
    assert result["streamed"] and result["frames"] == 6
    assert [shape for shape, _ in seen] == [(32, 48)] * 6  # one plane at a time
    assert {"spacing", "axes", "units"} <= set(seen[0][1])  # physical metadata first
    assert seen[1][1] == []
    assert calls == [(i, 6) for i in range(1, 7)]
    np.testing.assert_array_equal(iio.imread(tmp_path / "out.tif"), vol)


def test_convert_to_and_from_numpy(stack_tif, tmp_path):
    path, vol = stack_tif
    npy = tmp_path / "vol.npy"
    assert main(["convert", str(path), str(npy), "-q"]) == 0
    np.testing.assert_array_equal(np.load(npy), vol)
    npz = tmp_path / "frames.npz"
    np.savez(npz, *vol[:3])
    back = tmp_path / "frames.tif"
    assert main(["convert", str(npz), str(back), "-q"]) == 0
    np.testing.assert_array_equal(iio.imread(back), vol[:3])


def test_convert_2d_image(tmp_path):
    src = tmp_path / "one.npy"
    image = _stack((1, 20, 30))[0]
    np.save(src, image)
    assert main(["convert", str(src), str(tmp_path / "one.tif"), "-q"]) == 0
    np.testing.assert_array_equal(iio.imread(tmp_path / "one.tif"), image)


def test_convert_failure_leaves_no_file(stack_tif, tmp_path, capsys):
    path, _ = stack_tif
    out = tmp_path / "out.unknownext"
    assert main(["convert", str(path), str(out)]) == 1
    assert "unknownext" in capsys.readouterr().err
    assert not out.exists()


def test_convert_tiff_to_hdf5_and_back(stack_tif, tmp_path):
    path, vol = stack_tif
    h5 = tmp_path / "vol.h5"
    assert main(["convert", str(path), str(h5), "--dataset", "data", "-q"]) == 0
    np.testing.assert_array_equal(iio.imread(h5), vol)
    assert iio.improps(h5).spacing == pytest.approx(SPACING)
    back = tmp_path / "back.tif"
    assert main(["convert", str(h5), str(back), "--dataset", "data", "-q"]) == 0
    np.testing.assert_array_equal(iio.imread(back), vol)
    assert iio.improps(back).spacing == pytest.approx(SPACING)
    gz = tmp_path / "gz.h5"
    assert main(["convert", str(path), str(gz), "--compression", "gzip", "-q"]) == 0
    assert cli.info(gz)["compression"] == "gzip"


def test_dataset_needs_hdf5(stack_tif, tmp_path, capsys):
    path, _ = stack_tif
    assert main(["convert", str(path), str(tmp_path / "x.tif"), "--dataset", "d"]) == 1
    assert "applies to HDF5" in capsys.readouterr().err


def test_convert_folder_of_slices(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    vol = _stack((5, 16, 20))
    for i, plane in enumerate(vol):
        iio.imwrite(folder / f"z{i}.tif", plane)
    out = tmp_path / "stack.ome.tif"
    assert main(["convert", str(folder / "z*.tif"), str(out), "-q"]) == 0
    np.testing.assert_array_equal(iio.imread(out), vol)


# -- preview -------------------------------------------------------------------------------
def _read_png(path):
    from PIL import Image
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def test_preview_volume(stack_tif, tmp_path, capsys):
    path, vol = stack_tif
    out = tmp_path / "p.png"
    assert main(["preview", str(path), "-o", str(out), "--slices", "4", "--size", "600"]) == 0
    assert "p.png" in capsys.readouterr().out
    img = _read_png(out)
    assert img.dtype == np.uint8 and img.ndim == 2
    assert 490 <= max(img.shape) <= 512  # small data is blown up to be seen
    # the left part is the projection: the bright box shows, the rest is dark
    h = img.shape[0]
    mip = img[:, :h * 48 // 32]
    assert mip.max() == 255 and np.median(mip) < 64


def test_preview_image_thumbnail(tmp_path):
    src = tmp_path / "rgb.npy"
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[100:200, 100:300] = (200, 50, 10)
    np.save(src, rgb)
    h, w = cli.preview(src, tmp_path / "t.png", size=100)
    img = _read_png(tmp_path / "t.png")
    assert img.shape == (h, w, 3) == (75, 100, 3)


def test_preview_progress_and_default_name(stack_tif, tmp_path, monkeypatch):
    path, _ = stack_tif
    calls = []
    cli.preview(path, tmp_path / "q.png", progress=lambda d, t: calls.append(d))
    assert calls == list(range(1, 7))
    monkeypatch.chdir(tmp_path)
    assert main(["preview", str(path), "-q"]) == 0
    assert (tmp_path / "stack_preview.png").is_file()


# -- formats ------------------------------------------------------------------------------------
def test_formats_table(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for spec in registry.PLUGINS:
        assert spec.name in out
    assert ".tif" in out and "yes" in out
    assert main(["formats", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    tif = next(r for r in rows if r["name"] == "tifffile")
    assert tif["installed"] is True and ".tif" in tif["extensions"] and tif["modes"]


def test_formats_names_missing_backends(monkeypatch, capsys):
    fake = registry.PluginSpec(name="fakefmt", module="nowhere", class_name="X",
                               extensions=(".fake",), modes="i", description="test",
                               backend="imgio_no_such_backend", extra="fake")
    monkeypatch.setattr(registry, "PLUGINS", registry.PLUGINS + [fake])
    assert main(["formats"]) == 0
    assert "no: pip install imgio[fake]" in capsys.readouterr().out


# -- progress helper ------------------------------------------------------------------------------
class _FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    quiet = make_progress(True, 3, stream=io.StringIO())
    assert not quiet.active
    quiet(1)
    quiet.close()
    tty = _FakeTTY()
    with make_progress(True, 3, "reading", stream=tty) as bar:
        assert bar.active
        for i in range(3):
            bar(i + 1)
    assert "reading" in tty.getvalue() and "/3" in tty.getvalue()


def test_progress_callback_and_none():
    calls = []
    with make_progress(lambda d, t: calls.append((d, t)), 2) as report:
        report.advance()
        report(2, 4)  # the total can be corrected on the way
    assert calls == [(1, 2), (2, 4)]
    for off in (None, False):
        p = make_progress(off, 5)
        assert isinstance(p, Progress) and not p.active
        p(3)
    with pytest.raises(TypeError, match="progress must be"):
        make_progress("yes", 3)


def test_track():
    calls = []
    assert list(track(iter("ab"), lambda d, t: calls.append((d, t)))) == ["a", "b"]
    assert calls == [(1, None), (2, None)]
    assert list(track([1, 2], None)) == [1, 2]


def test_convert_bar_on_a_terminal(stack_tif, tmp_path, monkeypatch):
    path, _ = stack_tif
    tty = _FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(["convert", str(path), str(tmp_path / "o.tif")]) == 0
    assert "convert stack.tif" in tty.getvalue() and "/6" in tty.getvalue()
    tty2 = _FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty2)
    assert main(["convert", str(path), str(tmp_path / "o2.tif"), "--quiet"]) == 0
    assert tty2.getvalue() == ""


# -- issue 19: what convert writes, selections, errors, pictures -----------------------------------
def _tiff_flags(path):
    import tifffile
    with tifffile.TiffFile(path) as tif:
        return tif.is_imagej, tif.is_ome, tif.is_bigtiff


def _imagej_voxel(path):
    """(z, y, x) voxel size and unit as Fiji reads them from an ImageJ hyperstack."""
    import tifffile
    with tifffile.TiffFile(path) as tif:
        ij = tif.imagej_metadata
        page = tif.pages[0]
        xres = page.tags["XResolution"].value
        yres = page.tags["YResolution"].value
        return (ij.get("spacing"), yres[1] / yres[0], xres[1] / xres[0]), ij.get("unit")


def test_version(capsys):
    import imgio
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"imgio {imgio.__version__}"


def test_convert_imagej_stack_is_an_imagej_hyperstack(stack_tif, tmp_path):
    path, vol = stack_tif
    out = tmp_path / "copy.tif"
    assert main(["convert", str(path), str(out), "-q"]) == 0
    assert _tiff_flags(out) == (True, False, False)  # ImageJ, not OME, not BigTIFF
    (dz, dy, dx), unit = _imagej_voxel(out)
    assert (dz, dy, dx) == pytest.approx(SPACING) and unit in ("micron", "um", "µm")
    np.testing.assert_array_equal(iio.imread(out), vol)
    # the same file iio.imwrite writes for the same data
    ref = tmp_path / "ref.tif"
    iio.imwrite(ref, vol, spacing=SPACING, axes="ZYX", units="um")
    assert _tiff_flags(ref) == _tiff_flags(out) and _imagej_voxel(ref) == _imagej_voxel(out)


def test_convert_to_ome_when_asked_or_when_imagej_cannot(stack_tif, tmp_path):
    path, vol = stack_tif
    out = tmp_path / "copy.ome.tif"
    assert main(["convert", str(path), str(out), "-q"]) == 0
    assert _tiff_flags(out) == (False, True, False)
    props = iio.improps(out)
    assert props.spacing == pytest.approx(SPACING) and props.units == ("um",) * 3
    f64 = tmp_path / "f64.h5"
    iio.imwrite(f64, vol.astype(np.float64), spacing=SPACING, axes="ZYX", units="um")
    out = tmp_path / "f64.tif"
    assert main(["convert", str(f64), str(out), "-q"]) == 0  # ImageJ holds no float64
    assert _tiff_flags(out) == (False, True, False)
    assert iio.improps(out).spacing == pytest.approx(SPACING)


def test_convert_folder_and_hdf5_to_imagej(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    vol = _stack((5, 16, 20))
    import tifffile
    for i, plane in enumerate(vol):  # Fiji's "Image Sequence" export: one ImageJ file a slice
        tifffile.imwrite(folder / f"z{i}.tif", plane, imagej=True, resolution=(4.0, 4.0),
                         metadata={"spacing": 2.0, "unit": "micron"})
    out = tmp_path / "folder.tif"
    assert main(["convert", str(folder), str(out), "-q"]) == 0
    assert _tiff_flags(out) == (True, False, False)
    np.testing.assert_array_equal(iio.imread(out), vol)
    assert _imagej_voxel(out) == (pytest.approx((2.0, 0.25, 0.25)), "micron")
    h5 = tmp_path / "vol.h5"
    iio.imwrite(h5, vol, spacing=SPACING, axes="ZYX", units="um")
    out = tmp_path / "h5.tif"
    assert main(["convert", str(h5), str(out), "-q"]) == 0
    assert _tiff_flags(out) == (True, False, False)
    assert _imagej_voxel(out)[0] == pytest.approx(SPACING)


def test_convert_streamed_large_source_is_ome_not_bigtiff(stack_tif, tmp_path, monkeypatch):
    path, vol = stack_tif
    monkeypatch.setattr(cli._convert, "STREAM_ABOVE", 0)
    out = tmp_path / "big.tif"
    assert cli.convert(path, out)["streamed"]
    assert _tiff_flags(out) == (False, True, False)
    assert iio.improps(out).spacing == pytest.approx(SPACING)
    np.testing.assert_array_equal(iio.imread(out), vol)


def _two_datasets(path):
    import h5py
    with h5py.File(path, "w") as f:
        f.create_dataset("raw", data=_stack((4, 16, 20)), chunks=(1, 16, 20), compression="gzip")
        f.create_dataset("labels/seg", data=np.zeros((4, 16, 20), np.uint8))


def test_info_lists_the_datasets_of_a_multi_dataset_file(tmp_path, capsys):
    path = tmp_path / "ilastik.h5"
    _two_datasets(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "/raw" in out and "/labels/seg" in out and "gzip" in out and "(1, 16, 20)" in out
    assert main(["info", "--json", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    rows = {d["path"]: d for d in report["datasets"]}
    assert rows["/raw"] == {"path": "/raw", "shape": [4, 16, 20], "dtype": "uint16",
                            "chunks": [1, 16, 20], "compression": "gzip"}
    assert rows["/labels/seg"]["chunks"] is None
    assert main(["info", "--json", "--dataset", "/labels/seg", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert report["shape"] == [4, 16, 20] and report["dtype"] == "uint8"


def test_preview_and_convert_take_a_dataset(tmp_path):
    path = tmp_path / "two.h5"
    _two_datasets(path)
    assert main(["preview", str(path), "--dataset", "/raw", "-o", str(tmp_path / "p.png"),
                 "-q"]) == 0
    out = tmp_path / "raw.tif"
    assert main(["convert", str(path), str(out), "--dataset", "/raw", "-q"]) == 0
    np.testing.assert_array_equal(iio.imread(out), iio.imread(path, dataset="/raw"))


def test_selection_option_a_plugin_lacks_is_named(stack_tif, capsys):
    path, _ = stack_tif
    assert main(["info", "--dataset", "/x", str(path)]) == 1
    err = capsys.readouterr().err
    assert "--dataset does not apply" in err and "stack.tif" in err
    assert main(["info", "--level", "4", str(path)]) == 1
    assert "level 4 requested" in capsys.readouterr().err


@pytest.mark.parametrize("dst, words", [
    ("x.tif", ["'bogus'", "zlib", "zstd", "lzw"]),
    ("x.h5", ["'zlib'", "use gzip", "gzip", "lzf"]),
    ("x.npy", ["applies to"]),
])
def test_compression_names_the_valid_choices(stack_tif, tmp_path, capsys, dst, words):
    path, _ = stack_tif
    name = "zlib" if dst.endswith(".h5") else "bogus"
    assert main(["convert", str(path), str(tmp_path / dst), "--compression", name]) == 1
    err = capsys.readouterr().err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / dst).exists()


@pytest.mark.parametrize("code, reason", [(13, "permission denied"),
                                          (30, "read-only file system"),
                                          (28, "no space left on device")])
def test_write_errors_name_the_target_and_reason(stack_tif, tmp_path, capsys, monkeypatch,
                                                 code, reason):
    import os
    import tempfile
    path, _ = stack_tif
    out = tmp_path / "out.tif"

    def refuse(prefix="", suffix="", dir=None, **kw):
        raise OSError(code, os.strerror(code), os.path.join(dir or "", prefix + "k3j" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert main(["convert", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out}: {reason}" in err
    assert "imgio-partial" not in err


def test_preview_tiles_are_area_means_of_the_whole_slice(tmp_path):
    ramp = np.tile(np.repeat(np.arange(10, dtype=np.uint8) * 25, 3), (30, 1))  # 10 bands
    vol = np.stack([ramp] * 4)
    src = tmp_path / "ramp.npy"
    np.save(src, vol)
    cli.preview(src, tmp_path / "r.png", n_slices=4, size=512)
    img = _read_png(tmp_path / "r.png")
    h = img.shape[0]
    row = img[h // 2 + 20, :]  # through the MIP and the lower row of tiles, below the labels
    plateaus, start = [], 0  # the gray levels that last 3 pixels or more, left to right
    for i in range(1, len(row) + 1):
        if i == len(row) or row[i] != row[start]:
            if i - start >= 3:
                plateaus.append(int(row[start]))
            start = i
    pieces = "/".join(map(str, plateaus)).split("/96/")  # MIP, tile, tile, split by the gaps
    assert len(pieces) == 3
    mip = pieces[0].split("/")
    assert len(mip) == 10  # the ten bands, each its own level
    assert pieces[1].split("/") == mip and pieces[2].split("/") == mip  # tiles show the same
    # no empty band: the last row under the tiles is picture, not gap gray
    assert (img[-1, img.shape[1] // 2:] != 96).mean() > 0.5


def test_preview_labels_are_legible_on_bright_tiles(tmp_path):
    vol = np.full((4, 64, 64), 60000, np.uint16)
    vol[:, 0, 0] = 0  # something to stretch against: the tiles are white
    src = tmp_path / "white.npy"
    np.save(src, vol)
    cli.preview(src, tmp_path / "w.png", n_slices=4, size=512)
    img = _read_png(tmp_path / "w.png")
    corner = img[2:14, 2:30]  # the MIP label box
    assert corner.min() == 0 and corner.max() >= 250  # dark box, light text


def test_preview_format_by_extension(stack_tif, tmp_path, capsys):
    from PIL import Image
    path, _ = stack_tif
    assert main(["preview", str(path), "-o", str(tmp_path / "p.jpg"), "-q"]) == 0
    with Image.open(tmp_path / "p.jpg") as im:
        assert im.format == "JPEG"
    assert main(["preview", str(path), "-o", str(tmp_path / "p.bmp")]) == 1
    err = capsys.readouterr().err
    assert ".png" in err and ".jpg" in err and "'.bmp'" in err
    assert not (tmp_path / "p.bmp").exists()
