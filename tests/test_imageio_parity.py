"""Side by side with imageio: the same calls on imageio 2.38 and on imgio.

Each behaviour is one function ``case(lib, data)`` that makes imageio-API calls
through ``lib.v2``/``lib.v3`` and returns a summary of what it saw (arrays as
shape, dtype and a checksum; metadata as ``{key: (type, value)}``).  The test
runs it once with imageio and once with imgio and compares the summaries, the
warnings (category and message) and the exception (imgio's must be an instance
of imageio's exception class, with the same message where the case says so).
Deliberate differences (docs/migration.md) have their own tests at the end,
which show imageio's result next to imgio's.
"""
from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path

import imageio
import imageio.v2
import imageio.v3
import numpy as np
import pytest
import tifffile
from PIL import Image, PngImagePlugin

import imgio
import imgio.v2
import imgio.v3

DATA = Path(__file__).parent / "data"

LIBS = {
    "imageio": types.SimpleNamespace(name="imageio", v2=imageio.v2, v3=imageio.v3, root="imageio"),
    "imgio": types.SimpleNamespace(name="imgio", v2=imgio.v2, v3=imgio.v3, root="imgio"),
}


# -- the files every case may use ---------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("parity")
    for name in ("chelsea.png", "chelsea.jpg", "newtonscradle.gif", "multipage.tif",
                 "stent.npz", "camera.png"):
        shutil.copy(DATA / name, d / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # tifffile's planar-RGB notice
        with tifffile.TiffWriter(d / "series.tif") as tw:  # two series of different shape
            tw.write(np.arange(4 * 8 * 9, dtype=np.uint8).reshape(4, 8, 9),
                     photometric="minisblack")
            tw.write(np.arange(30, dtype=np.uint16).reshape(5, 6))
    tifffile.imwrite(d / "imagej.tif", np.zeros((3, 4, 5), np.uint16), imagej=True,
                     resolution=(2.0, 2.0),
                     metadata={"spacing": 2.5, "finterval": 0.5, "unit": "um", "axes": "ZYX"})
    tifffile.imwrite(d / "shaped.tif", np.arange(5 * 4 * 6, dtype=np.uint16).reshape(5, 4, 6),
                     photometric="minisblack", metadata={"foo": 1})
    tifffile.imwrite(d / "zlib.tif", np.tile(np.arange(64, dtype=np.uint16), (16, 2)),
                     compression="zlib", resolution=(3, 4), software="parity",
                     datetime="2024:01:02 03:04:05")
    # a resolution whose X denominator is 0
    tifffile.imwrite(d / "zero.tif", np.zeros((4, 5), np.uint8), resolution=(3, 3))
    raw = bytearray((d / "zero.tif").read_bytes())
    with tifffile.TiffFile(d / "zero.tif") as tif:
        offset = tif.pages[0].tags["XResolution"].valueoffset
    raw[offset + 4:offset + 8] = struct.pack("<I", 0)
    (d / "zero.tif").write_bytes(bytes(raw))
    # a PNG with a gAMA chunk
    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", struct.pack(">I", 45455))
    Image.open(DATA / "chelsea.png").save(d / "gamma.png", pnginfo=info)
    # a JPEG whose EXIF orientation is 6 (rotate 90 degrees clockwise)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(DATA / "chelsea.png").save(d / "rotated.jpg", exif=exif.tobytes())
    # a GIF with a transparent colour
    frames = []
    for k in range(3):
        idx = (np.arange(8 * 10).reshape(8, 10) + k) % 4
        im = Image.fromarray(idx.astype(np.uint8), "P")
        im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
        frames.append(im)
    frames[0].save(d / "transparent.gif", save_all=True, append_images=frames[1:],
                   transparency=3, duration=40, loop=0)
    with zipfile.ZipFile(d / "archive.zip", "w") as zf:
        zf.write(DATA / "chelsea.png", "inner/chelsea.png")
    images = d / "userdir" / ".imageio" / "images"
    images.mkdir(parents=True)
    shutil.copy(DATA / "chelsea.png", images / "chelsea.png")
    return d


@pytest.fixture(autouse=True)
def _offline_standard_images(data, monkeypatch):
    # standard images come from the local cache only; imageio must never download
    monkeypatch.setenv("IMAGEIO_USERDIR", str(data / "userdir"))
    monkeypatch.setenv("IMAGEIO_NO_INTERNET", "1")
    monkeypatch.chdir(data)


# -- summaries ----------------------------------------------------------------------------
def arr(a):
    a = np.asarray(a)
    return ("array", a.shape, str(a.dtype), hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest())


def props(p):
    return ("props", tuple(p.shape), str(np.dtype(p.dtype)), p.n_images, p.is_batch)


def _plain(value):
    if isinstance(value, np.ndarray):
        return arr(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def meta(m):
    """Keys with the type and value of each (compared as a superset: imgio may add keys)."""
    return ("meta", {k: (type(v).__name__, _plain(v)) for k, v in m.items()})


@dataclasses.dataclass
class Seen:
    value: object
    error: BaseException | None
    warnings: list


def _noise(w) -> bool:
    text = str(w.message)
    return (issubclass(w.category, ResourceWarning) or "DICOM" in text
            or "tifffile" in (w.filename or "") and issubclass(w.category, DeprecationWarning))


def observe(case, lib, data) -> Seen:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            value, error = case(lib, data), None
        except Exception as exc:  # the exception is part of the behaviour
            value, error = None, exc
            exc.__traceback__ = None  # frames would keep the library's file objects alive
        gc.collect()  # a file left open by either library warns here, not in a later test
    return Seen(value, error, [(w.category, str(w.message)) for w in record if not _noise(w)])


def _same_value(ref, got):
    if isinstance(ref, tuple) and ref and ref[0] == "meta":
        assert isinstance(got, tuple) and got[0] == "meta", got
        missing = {k: v for k, v in ref[1].items() if k not in got[1]}
        assert not missing, f"imgio lacks imageio's keys {missing}"
        wrong = {k: (v, got[1][k]) for k, v in ref[1].items() if got[1][k] != v}
        assert not wrong, f"different type/value (imageio, imgio): {wrong}"
    elif isinstance(ref, dict):
        assert isinstance(got, dict) and ref.keys() <= got.keys(), (ref, got)
        for k in ref:
            _same_value(ref[k], got[k])
    elif isinstance(ref, (list, tuple)) and not (ref and ref[0] in ("array", "props")):
        assert isinstance(got, type(ref)) and len(ref) == len(got), (ref, got)
        for r, g in zip(ref, got):
            _same_value(r, g)
    else:
        assert got == ref


# -- the behaviours -----------------------------------------------------------------------
CASES = {}


def case(name, *, message=True):
    """Register a behaviour; ``message``: the exception texts must be equal too."""
    def register(fn):
        CASES[name] = (fn, message)
        return fn
    return register


# TIFF metadata
@case("tiff-page-meta")
def _(lib, d):
    return meta(lib.v3.immeta("multipage.tif", index=0))


@case("tiff-page-meta-enums-resolution-datetime")
def _(lib, d):
    m = lib.v3.immeta("zlib.tif", index=0)
    return meta(m), m["compression"] == 8


@case("tiff-flat-page-meta")
def _(lib, d):
    return meta(lib.v3.immeta("series.tif", index=..., page=1))


@case("tiff-file-meta")
def _(lib, d):
    return meta(lib.v3.immeta("multipage.tif"))


@case("tiff-file-meta-imagej-merged")
def _(lib, d):
    m = lib.v3.immeta("imagej.tif")
    return meta(m), m["spacing"], m["finterval"]


@case("tiff-file-meta-shaped-merged")
def _(lib, d):
    m = lib.v3.immeta("shaped.tif")
    return meta(m), m["shape"]


@case("tiff-zero-denominator-warns")
def _(lib, d):
    m = lib.v3.immeta("zero.tif", index=0)
    return meta(m), "resolution" in m


@case("tiff-zero-denominator-improps-warns")
def _(lib, d):
    return (props(lib.v3.improps("zero.tif")), props(lib.v3.improps("zero.tif", index=...)),
            props(lib.v3.improps("zero.tif", index=..., page=0)))


@case("tiff-zero-denominator-v2-reader-warns-per-read")
def _(lib, d):
    with lib.v2.get_reader("zero.tif") as r:  # imgio counting the images adds no warning
        return arr(r.get_data(0)), arr(r.get_data(0))


@case("tiff-improps-index-and-page")
def _(lib, d):
    return (props(lib.v3.improps("multipage.tif", index=0, page=1)),
            props(lib.v3.improps("multipage.tif", index=..., page=1)))


@case("tiff-iter-pages-shaped-series")
def _(lib, d):
    with lib.v3.imopen("shaped.tif", "r") as f:
        return [arr(p) for p in f.iter_pages()], [arr(p) for p in f.iter_pages(index=0)]


@case("tiff-iter-pages-two-series")
def _(lib, d):
    with lib.v3.imopen("series.tif", "r") as f:
        return [arr(p) for p in f.iter_pages()], [arr(p) for p in f.iter_pages(index=1)]


@case("tiff-write-1d")
def _(lib, d):
    lib.v3.imwrite(f"one-{lib.name}.tif", np.arange(5.0))
    return arr(lib.v3.imread(f"one-{lib.name}.tif"))


@case("tiff-unknown-read-keyword")
def _(lib, d):
    return lib.v3.imread("multipage.tif", img_num=0)


@case("npz-unknown-read-keyword", message=False)
def _(lib, d):
    try:
        lib.v3.imread("stent.npz", img_num=0)
    except TypeError as exc:  # the class name differs (imageio: NpzFormat.Reader._open)
        return str(exc).split(".")[-1].split("()", 1)[1]


@case("v2-imwrite-1d-refused", message=False)
def _(lib, d):
    return lib.v2.imwrite(f"one-v2-{lib.name}.tif", np.arange(5, dtype=np.uint8))


# v2 readers and writers
@case("v2-get-data-negative-tiff", message=False)
def _(lib, d):
    with lib.v2.get_reader("series.tif", format="TIFF") as r:
        return r.get_data(-1)


@case("v2-get-data-negative-npz", message=False)
def _(lib, d):
    with lib.v2.get_reader("stent.npz") as r:
        return r.get_data(-1)


@case("v2-get-data-past-end", message=False)
def _(lib, d):
    with lib.v2.get_reader("series.tif", format="TIFF") as r:
        return r.get_data(2)


@case("v2-format-names")
def _(lib, d):
    names = []
    for uri, fmt in (("series.tif", "TIFF"), ("series.tif", "tiff"), ("stent.npz", None),
                     ("stent.npz", "NPZ")):
        with lib.v2.get_reader(uri, format=fmt) as r:
            names.append(r.format.name)
    return names


@case("v2-append-data-equals-mimwrite")
def _(lib, d):
    frames = [np.full((4, 5), k, np.uint8) for k in range(3)]
    a, m = f"append-{lib.name}.tif", f"mimsave-{lib.name}.tif"
    with lib.v2.get_writer(a) as w:
        for frame in frames:
            w.append_data(frame)
    lib.v2.mimsave(m, frames)
    out = []
    for uri in (a, m):
        with lib.v2.get_reader(uri) as r:
            n = r.get_length()
        out.append((arr(lib.v2.imread(uri)), [arr(x) for x in lib.v2.mimread(uri)], n,
                    arr(lib.v3.imread(uri))))
    return out


# Pillow
@case("pillow-get-meta-index")
def _(lib, d):
    with lib.v3.imopen("newtonscradle.gif", "r") as f:
        return meta(f.get_meta(index=1)), meta(f.get_meta())


@case("pillow-apply-gamma")
def _(lib, d):
    return arr(lib.v3.imread("gamma.png", apply_gamma=True)), arr(lib.v3.imread("gamma.png"))


@case("pillow-bits-palette")
def _(lib, d):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
    data = lib.v3.imwrite("<bytes>", image, extension=".png", bits=2)
    return arr(lib.v3.imread(data)), lib.v3.immeta(data)["mode"]


@case("pillow-gif-palette-write")
def _(lib, d):
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 255, (3, 12, 10, 3), dtype=np.uint8)
    data = lib.v3.imwrite("<bytes>", frames, extension=".gif")
    return arr(lib.v3.imread(data))


@case("pillow-gif-transparency-later-frames-rgba")
def _(lib, d):
    return arr(lib.v3.imread("transparent.gif", index=1)), arr(lib.v3.imread("transparent.gif", index=2))


@case("pillow-gif-read")
def _(lib, d):
    return (arr(lib.v3.imread("newtonscradle.gif")), props(lib.v3.improps("newtonscradle.gif")),
            [arr(x) for x in lib.v2.mimread("newtonscradle.gif")[:3]])


@case("pillow-pilmode-deprecated")
def _(lib, d):
    return arr(lib.v3.imread("chelsea.png", pilmode="L"))


@case("pillow-exifrotate-deprecated")
def _(lib, d):
    return arr(lib.v3.imread("rotated.jpg", exifrotate=True))


@case("pillow-exif-orientation-default-not-applied")
def _(lib, d):
    return (arr(lib.v3.imread("rotated.jpg")), arr(lib.v2.imread("rotated.jpg")),
            arr(lib.v3.imread("rotated.jpg", rotate=True)))


@case("pillow-fps-deprecated")
def _(lib, d):
    data = lib.v3.imwrite("<bytes>", np.zeros((3, 8, 8), np.uint8), extension=".gif", fps=10)
    return lib.v3.immeta(data)["duration"]


@case("pillow-format-hint-deprecated")
def _(lib, d):
    return arr(lib.v3.imread("chelsea.png", format_hint=".png"))


@case("pillow-format-change-warns")
def _(lib, d):
    with lib.v3.imopen(f"change-{lib.name}.png", "w") as f:
        f.write(np.zeros((8, 8), np.uint8), format="PNG")
        f.write(np.zeros((8, 8), np.uint8), format="GIF")


@case("pillow-format-on-bytes-warns")
def _(lib, d):
    data = lib.v3.imwrite("<bytes>", np.zeros((8, 8), np.uint8), format="PNG")
    stream = io.BytesIO()
    lib.v3.imwrite(stream, np.zeros((8, 8), np.uint8), format="PNG")
    return arr(lib.v3.imread(data)), arr(lib.v3.imread(stream.getvalue()))


@case("v2-format-on-bytes")
def _(lib, d):
    return arr(lib.v3.imread(lib.v2.imwrite("<bytes>", np.zeros((8, 8), np.uint8), format="PNG")))


@case("pillow-as-gray-refused-v3")
def _(lib, d):
    return lib.v3.imread("chelsea.png", as_gray=True)


@case("pillow-as-gray-refused-v2")
def _(lib, d):
    return lib.v2.imread("chelsea.png", as_gray=True)


@case("pillow-unknown-read-keyword")
def _(lib, d):
    return lib.v3.imread("chelsea.png", img_num=0)


@case("pillow-unknown-properties-keyword")
def _(lib, d):
    return lib.v3.improps("chelsea.png", foo=0)


@case("pillow-unknown-metadata-keyword")
def _(lib, d):
    return lib.v3.immeta("chelsea.png", foo=0)


# core and sources
@case("imopen-legacy-mode")
def _(lib, d):
    with lib.v3.imopen("chelsea.png", "r", legacy_mode=True) as f:
        return arr(f.read())


@case("imopen-legacy-mode-plugin-refuses", message=False)
def _(lib, d):
    return lib.v3.imopen("chelsea.png", "r", legacy_mode=True, plugin="tifffile")


@case("imopen-plugin-refuses", message=False)
def _(lib, d):
    return lib.v3.imopen("chelsea.png", "r", plugin="tifffile")


@case("standard-image-read")
def _(lib, d):
    return arr(lib.v3.imread("imageio:chelsea.png")), arr(lib.v2.imread("imageio:chelsea.png"))


@case("standard-image-unknown")
def _(lib, d):
    return lib.v3.imread("imageio:nope.png")


@case("standard-image-write-refused")
def _(lib, d):
    return lib.v3.imwrite("imageio:chelsea.png", np.zeros((4, 4), np.uint8))


@case("standard-image-write-refused-v2")
def _(lib, d):
    return lib.v2.imwrite("imageio:x.png", np.zeros((4, 4), np.uint8))


@case("standard-image-missing-offline")
def _(lib, d):
    try:
        lib.v3.imread("imageio:astronaut.png")
    except OSError as exc:  # imageio: InternetNotAllowedError; imgio never downloads
        return "OSError", "astronaut.png" in str(exc) or "internet" in str(exc)


@case("zip-member-read")
def _(lib, d):
    return (arr(lib.v3.imread("archive.zip/inner/chelsea.png")),
            props(lib.v3.improps(d / "archive.zip" / "inner" / "chelsea.png")))


@case("zip-member-missing")
def _(lib, d):
    return lib.v3.imread("archive.zip/inner/nope.png")


@case("stream-read-only-object")
def _(lib, d):
    class ReadOnly:
        def __init__(self, payload):
            self._buf = io.BytesIO(payload)

        def read(self, n=-1):
            return self._buf.read(n)

        def close(self):
            pass

    return arr(lib.v3.imread(ReadOnly((d / "chelsea.png").read_bytes())))


@case("stream-pipe")
def _(lib, d):
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys; sys.stdout.buffer.write(open('chelsea.png', 'rb').read())"],
                            stdout=subprocess.PIPE, cwd=d)
    try:
        return arr(lib.v3.imread(proc.stdout))
    finally:
        proc.stdout.close()
        proc.wait()


@case("import-paths")
def _(lib, d):
    import importlib
    root = lib.root
    typing_ = importlib.import_module(f"{root}.typing")
    api = importlib.import_module(f"{root}.core.v3_plugin_api")
    request = importlib.import_module(f"{root}.core.request")
    tiff = importlib.import_module(f"{root}.plugins.tifffile_v3")
    pillow = importlib.import_module(f"{root}.plugins.pillow")
    importlib.import_module(f"{root}.plugins.npz")
    with lib.v3.imopen("multipage.tif", "r") as f:
        is_tiff = isinstance(f, tiff.TifffilePlugin) and isinstance(f, api.PluginV3)
        reading = f.request.mode.io_mode == request.IOMode.read
        is_request = isinstance(f.request, request.Request)
    with lib.v3.imopen("chelsea.png", "r") as f:
        is_pillow = isinstance(f, pillow.PillowPlugin)
    p = lib.v3.improps("chelsea.png")
    return (is_tiff, is_pillow, reading, is_request, isinstance(p, api.ImageProperties),
            request.URI_BYTES, request.IOMode.read == "r", request.IOMode.write == "w",
            issubclass(request.InitializationError, Exception),
            typing_.ArrayLike is np.typing.ArrayLike, "str" in str(typing_.ImageResource))


@pytest.mark.parametrize("name", list(CASES))
def test_same_as_imageio(name, data):
    fn, same_message = CASES[name]
    ref = observe(fn, LIBS["imageio"], data)
    got = observe(fn, LIBS["imgio"], data)
    if ref.error is not None:
        assert got.error is not None, f"imageio raised {ref.error!r}; imgio returned {got.value!r}"
        assert isinstance(got.error, type(ref.error)), (
            f"imageio raised {type(ref.error).__name__}, imgio {type(got.error).__mro__}")
        if same_message:
            assert str(got.error) == str(ref.error)
    else:
        assert got.error is None, f"imageio returned {ref.value!r}; imgio raised {got.error!r}"
        _same_value(ref.value, got.value)
    assert got.warnings == ref.warnings


def test_every_case_runs_on_imageio_as_described(data):
    # guards the guard: imageio really shows the behaviours the cases compare
    seen = {n: observe(fn, LIBS["imageio"], data) for n, (fn, _) in CASES.items()}
    assert seen["tiff-zero-denominator-warns"].warnings[0][0] is RuntimeWarning
    assert [w[0] for w in seen["tiff-zero-denominator-improps-warns"].warnings] == \
        [RuntimeWarning] * 3  # one per improps call
    assert len(seen["tiff-zero-denominator-v2-reader-warns-per-read"].warnings) == 2
    assert seen["tiff-page-meta-enums-resolution-datetime"].value[1] is True
    assert "unexpected keyword argument 'img_num'" in str(seen["pillow-unknown-read-keyword"].error)
    assert isinstance(seen["v2-get-data-negative-tiff"].error, IndexError)
    assert seen["v2-format-names"].value == ["TIFF", "TIFF", "NPZ", "NPZ"]
    assert seen["pillow-exif-orientation-default-not-applied"].value[0][1] == (300, 451, 3)
    assert seen["standard-image-read"].error is None
    assert isinstance(seen["standard-image-write-refused"].error, RuntimeError)


# -- deliberate differences (docs/migration.md), shown side by side -----------------------
def test_float_frames_to_gif_imageio_truncates_imgio_scales(data):
    frames = np.linspace(0, 1, 3 * 64).reshape(3, 8, 8)
    back = imageio.v3.imread(imageio.v3.imwrite("<bytes>", frames, extension=".gif"))
    assert back.max() == 1  # imageio casts 0..1 floats to uint8: a black image
    with pytest.warns(UserWarning, match="Lossy conversion from float64 to uint8"):
        data_ = imgio.v3.imwrite("<bytes>", frames, extension=".gif")
    ours = imgio.v3.imread(data_)
    assert ours.max() == 255 and ours.min() == 0  # imageio's own image_as_uint rule


def test_multipage_tiff_through_a_pipe_imageio_reads_one_page(data):
    def via_pipe(v3):
        proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.buffer.write("
                                 "open('multipage.tif', 'rb').read())"],
                                stdout=subprocess.PIPE, cwd=data)
        try:
            return v3.imread(proc.stdout)
        finally:
            proc.stdout.close()
            proc.wait()
    assert via_pipe(imageio.v3).shape == (15, 10)  # Pillow, first page only
    assert via_pipe(imgio.v3).shape == (2, 15, 10) == imageio.v3.imread(data / "multipage.tif").shape


def test_transparent_gif_imageio_cannot_stack_its_frames(data):
    # imageio reads frame 0 of a GIF with a transparent colour as RGB (losing the
    # transparency) and later frames as RGBA, so its default read of the file fails
    with pytest.raises(ValueError, match="same shape"):
        imageio.v3.imread("transparent.gif")
    assert imageio.v3.imread("transparent.gif", index=0).shape == (8, 10, 3)
    ours = imgio.v3.imread("transparent.gif")  # every frame RGBA, chosen from frame 0
    assert ours.shape == (3, 8, 10, 4)
    assert ours[0, 0, 3].tolist() == [9, 9, 9, 0]  # the transparent colour stays transparent
    np.testing.assert_array_equal(ours[1], imageio.v3.imread("transparent.gif", index=1))


def test_missing_standard_image_names_it(data):
    with pytest.raises(OSError, match="'astronaut.png'"):
        imgio.v3.imread("imageio:astronaut.png")
    assert not os.path.exists(data / "imageio:x.png")
