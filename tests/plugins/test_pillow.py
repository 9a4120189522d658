"""Pillow plugin: conformance suites for PNG, GIF, BMP, JPEG and WebP, the real sample
files compared with Pillow and imageio, and generated images for everything else."""
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

import imgio.v3 as iio
from imgio.errors import (CorruptFileError, DTypeError, FormatError, ImageTooLargeError,
                          ImgioError, ShapeError)
from imgio.testing import PluginConformance

DATA = Path(__file__).parent.parent / "data"
HAS_WEBP = features.check("webp")


def smooth_rgb(seed=0, shape=(24, 32)):
    """A smooth colour image (JPEG and WebP keep it close)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    base = rng.uniform(40, 200, 3)
    img = np.stack([base[c] + 40 * np.sin((x + 3 * c + seed) / 7.0) * np.cos(y / 9.0)
                    for c in range(3)], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def pil_array(path_or_bytes, **convert):
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        return np.asarray(im.convert(**convert) if convert else im)


# -- conformance ----------------------------------------------------------------------
class TestPngConformance(PluginConformance):
    """A batch of PNG frames is written as APNG, which reads back frame by frame."""

    plugin = "pillow"
    extension = ".png"

    def make_image(self, seed=0):
        return np.random.default_rng(seed).integers(0, 256, (13, 17, 3), dtype=np.uint8)


class TestPng16Conformance(TestPngConformance):
    batch = False  # APNG through Pillow: 16-bit gray frames are tested separately below

    def make_image(self, seed=0):
        return np.random.default_rng(seed).integers(0, 65536, (13, 17), dtype=np.uint16)


class TestGifConformance(PluginConformance):
    plugin = "pillow"
    extension = ".gif"

    def make_image(self, seed=0):
        # at most 256 colours, so the palette holds every pixel exactly
        palette = np.random.default_rng(seed).integers(0, 256, (40, 3), dtype=np.uint8)
        idx = np.random.default_rng(seed + 100).integers(0, 40, (14, 18))
        return palette[idx]

    def check_equal(self, got, expected):
        # GIF's natural ndimage (index=None) is the frame stack, as in imageio: a
        # single image reads back with a batch axis of one.  Compare that frame.
        if got.ndim == expected.ndim + 1:
            assert got.shape[0] == 1, got.shape
            got = got[0]
        super().check_equal(got, expected)

    def test_natural_ndimage_is_a_batch(self, tmp_path):
        # GIF's index=None is the frame stack: properties() is (1, H, W, 3)
        path = tmp_path / f"image{self.extension}"
        image = self.write_file(path)
        with iio.imopen(path, "r") as f:
            assert f.properties().shape == (1,) + image.shape
            assert f.properties().is_batch
            assert len(list(f.iter())) == 1


class TestBmpConformance(PluginConformance):
    plugin = "pillow"
    extension = ".bmp"
    batch = False  # BMP holds one image

    def make_image(self, seed=0):
        return np.random.default_rng(seed).integers(0, 256, (9, 21, 3), dtype=np.uint8)


class TestJpegConformance(PluginConformance):
    plugin = "pillow"
    extension = ".jpg"
    lossless = False
    batch = False  # JPEG holds one image

    def make_image(self, seed=0):
        return smooth_rgb(seed)


@pytest.mark.skipif(not HAS_WEBP, reason="this Pillow has no WebP support")
class TestWebpConformance(PluginConformance):
    plugin = "pillow"
    extension = ".webp"
    lossless = False

    def make_image(self, seed=0):
        return smooth_rgb(seed)


# -- real sample files ----------------------------------------------------------------
@pytest.mark.parametrize("name,shape,dtype", [
    ("chelsea.png", (300, 451, 3), np.uint8),
    ("chelsea.jpg", (300, 451, 3), np.uint8),
    ("chelsea.bmp", (300, 451, 3), np.uint8),
    ("camera.png", (512, 512), np.uint8),
    ("coins.png", (303, 384), np.uint8),
    ("imageio16.png", (16, 16, 4), np.uint8),  # despite its name: an 8-bit RGBA PNG
    ("checkerboard.png", (200, 200), np.uint8),
])
def test_real_still_images(name, shape, dtype):
    path = DATA / name
    image = iio.imread(path)
    assert image.shape == shape and image.dtype == dtype
    assert image.flags.writeable
    np.testing.assert_array_equal(image, pil_array(path))
    props = iio.improps(path)
    assert props.shape == shape and props.dtype == dtype and not props.is_batch
    assert iio.improps(path, index=...).shape == (1,) + shape
    assert len(list(iio.imiter(path))) == 1


def test_real_samples_match_imageio():
    import imageio.v3 as ref  # the test extra installs imageio: a missing one fails
    for name in ("chelsea.png", "chelsea.jpg", "chelsea.bmp", "camera.png", "coins.png",
                 "imageio16.png", "checkerboard.png", "newtonscradle.gif"):
        np.testing.assert_array_equal(iio.imread(DATA / name), ref.imread(DATA / name))
        np.testing.assert_array_equal(iio.imread(DATA / name, mode="L"),
                                      ref.imread(DATA / name, mode="L"))


def test_chelsea_formats_agree():
    png = iio.imread(DATA / "chelsea.png")
    np.testing.assert_array_equal(iio.imread(DATA / "chelsea.bmp"), png)
    jpg = iio.imread(DATA / "chelsea.jpg")
    assert np.abs(jpg.astype(int) - png).mean() < 5


def test_real_gif_frames():
    path = DATA / "newtonscradle.gif"
    stack = iio.imread(path)
    assert stack.shape == (36, 150, 200, 3) and stack.dtype == np.uint8
    props = iio.improps(path)
    assert props.shape == stack.shape and props.is_batch and props.n_images == 36
    np.testing.assert_array_equal(iio.imread(path, index=...), stack)
    frames = list(iio.imiter(path))
    assert len(frames) == 36
    with Image.open(path) as im:
        for i in (0, 1, 17, 35):
            im.seek(i)
            np.testing.assert_array_equal(frames[i], np.asarray(im.convert("RGB")))
            np.testing.assert_array_equal(iio.imread(path, index=i), frames[i])
    np.testing.assert_array_equal(iio.imread(path, index=-1), frames[-1])
    assert iio.improps(path, index=3).shape == (150, 200, 3)
    meta = iio.immeta(path)
    assert meta["loop"] == 0 and meta["n_images"] == 36 and "duration" in meta
    assert iio.immeta(path, index=2)["duration"] > 0


def test_improps_reads_no_pixels(tmp_path):
    data = (DATA / "chelsea.png").read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 3])
    assert iio.improps(cut).shape == (300, 451, 3)  # the header is intact
    with pytest.raises(CorruptFileError):
        iio.imread(cut)


# -- reading options ------------------------------------------------------------------
@pytest.mark.parametrize("mode,shape,dtype", [
    ("L", (300, 451), np.uint8), ("RGBA", (300, 451, 4), np.uint8),
    ("F", (300, 451), np.float32), ("I", (300, 451), np.int32), ("1", (300, 451), bool),
    ("LA", (300, 451, 2), np.uint8),
])
def test_mode_conversion_and_props(mode, shape, dtype):
    path = DATA / "chelsea.png"
    image = iio.imread(path, mode=mode)
    assert image.shape == shape and image.dtype == dtype
    props = iio.improps(path, mode=mode)
    assert props.shape == shape and props.dtype == dtype
    if mode != "1":
        np.testing.assert_array_equal(image, pil_array(path, mode=mode))
    with pytest.warns(DeprecationWarning, match="`pilmode` is deprecated"):
        np.testing.assert_array_equal(iio.imread(path, pilmode=mode), image)


@pytest.mark.parametrize("func", [iio.imread, iio.improps])
def test_as_gray_is_refused_as_imageio_does(func):
    with pytest.raises(TypeError, match="`as_gray` is no longer supported"):
        func(DATA / "chelsea.png", as_gray=True)


def test_bad_mode_and_keywords():
    with pytest.raises(ValueError, match="not a Pillow image mode"):
        iio.imread(DATA / "camera.png", mode="XYZ")
    with pytest.raises(TypeError, match=r"^PillowPlugin.read\(\) got an unexpected keyword "
                       r"argument 'quality'$"):
        iio.imread(DATA / "camera.png", quality=3)
    with pytest.raises(TypeError, match=r"properties\(\) got an unexpected keyword argument"):
        iio.improps(DATA / "camera.png", img_num=3)


def test_palette_png_reads_as_rgb_and_rgba():
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 4, (6, 5), dtype=np.uint8)
    im = Image.fromarray(idx).convert("P")  # index image: gray palette
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    rgb = iio.imread(buf.getvalue())
    assert rgb.shape == (6, 5, 3)
    np.testing.assert_array_equal(rgb[idx == 0], [[255, 0, 0]] * int((idx == 0).sum()))
    np.testing.assert_array_equal(iio.imread(buf.getvalue(), mode="P"), idx)
    buf = io.BytesIO()
    im.save(buf, format="PNG", transparency=1)
    rgba = iio.imread(buf.getvalue())
    assert rgba.shape == (6, 5, 4) and iio.improps(buf.getvalue()).shape == (6, 5, 4)
    assert (rgba[idx == 1, 3] == 0).all() and (rgba[idx != 1, 3] == 255).all()
    meta = iio.immeta(buf.getvalue(), exclude_applied=False)
    assert meta["mode"] == "P" and meta["palette"].shape[1] == 3
    assert "palette" not in iio.immeta(buf.getvalue())


def _jpeg_with_orientation(image, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "imgio-camera"  # Make
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_jpeg_exif_orientation(orientation):
    image = smooth_rgb(3, (16, 40))
    data = _jpeg_with_orientation(image, orientation)
    raw = iio.imread(data)  # no rotation by default, as imageio 2.38
    assert raw.shape == image.shape
    np.testing.assert_array_equal(iio.imread(data, rotate=False), raw)
    turned = iio.imread(data, rotate=True)
    expected = {1: raw, 3: np.rot90(raw, 2), 6: np.rot90(raw, -1), 8: np.rot90(raw, 1)}
    np.testing.assert_array_equal(turned, expected[orientation])
    assert iio.improps(data, rotate=True).shape == turned.shape
    assert iio.improps(data).shape == raw.shape
    with pytest.warns(DeprecationWarning, match="`exifrotate` is deprecated"):
        np.testing.assert_array_equal(iio.imread(data, exifrotate=True), turned)
    meta = iio.immeta(data)
    assert meta["Make"] == "imgio-camera" and "Orientation" not in meta
    assert iio.immeta(data, exclude_applied=False)["Orientation"] == orientation


def test_sixteen_bit_gray_png_roundtrip():
    image = (np.arange(40 * 30, dtype=np.uint32) * 53 % 65536).astype(np.uint16).reshape(40, 30)
    data = iio.imwrite("<bytes>", image, extension=".png")
    back = iio.imread(data)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)
    assert iio.improps(data).dtype == np.uint16
    np.testing.assert_array_equal(back, pil_array(data))


def test_sixteen_bit_colour_png_warns_about_pillow():
    # a 16-bit RGB PNG made by hand: Pillow only keeps the high byte of each sample
    h, w = 2, 3
    rows = b"".join(b"\x00" + bytes(range(i * 18, i * 18 + 18)) for i in range(h))

    def chunk(kind, body):
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))

    import zlib
    data = (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([16, 2, 0, 0, 0]))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    with pytest.warns(UserWarning, match="16-bit colour PNG"):
        image = iio.imread(data)
    assert image.shape == (2, 3, 3) and image.dtype == np.uint8


def test_apng_reads_as_stack(tmp_path):
    frames = [np.full((5, 6, 3), v, np.uint8) for v in (10, 90, 200)]
    path = tmp_path / "anim.png"
    iio.imwrite(path, frames, duration=100, loop=0)
    stack = iio.imread(path)
    assert stack.shape == (3, 5, 6, 3)
    np.testing.assert_array_equal(stack, np.stack(frames))
    assert iio.improps(path).shape == (3, 5, 6, 3)
    np.testing.assert_array_equal(iio.imread(path, index=1), frames[1])
    assert iio.immeta(path)["loop"] == 0
    # the .apng extension writes the same
    apng = tmp_path / "anim.apng"
    iio.imwrite(apng, frames)
    np.testing.assert_array_equal(iio.imread(apng), stack)


def test_single_frame_gif_is_a_batch_of_one():
    image = np.zeros((4, 5, 3), np.uint8)
    image[1, 2] = (255, 0, 0)
    data = iio.imwrite("<bytes>", image, extension=".gif")
    assert iio.imread(data).shape == (1, 4, 5, 3)
    assert iio.imread(data, index=0).shape == (4, 5, 3)


def test_gray_gif_reads_as_rgb():
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (3, 1))
    data = iio.imwrite("<bytes>", [gray, gray[:, ::-1].copy()], extension=".gif")
    stack = iio.imread(data)
    assert stack.shape == (2, 3, 25, 3)
    np.testing.assert_array_equal(stack[0, ..., 0], gray)
    np.testing.assert_array_equal(iio.imread(data, mode="L"), np.stack([gray, gray[:, ::-1]]))


# -- writing --------------------------------------------------------------------------
def test_png_write_options():
    image = smooth_rgb(1, (64, 64))
    fast = iio.imwrite("<bytes>", image, extension=".png", compress_level=0)
    small = iio.imwrite("<bytes>", image, extension=".png", compress_level=9, optimize=True)
    assert len(small) < len(fast)
    np.testing.assert_array_equal(iio.imread(small), image)


def test_jpeg_quality():
    image = smooth_rgb(2, (64, 64))
    low = iio.imwrite("<bytes>", image, extension=".jpg", quality=10)
    high = iio.imwrite("<bytes>", image, extension=".jpg", quality=95)
    assert len(low) < len(high)
    err = [np.abs(iio.imread(d).astype(int) - image).mean() for d in (low, high)]
    assert err[1] < err[0]


def test_gif_duration_and_loop(tmp_path):
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 100, 200)]
    path = tmp_path / "anim.gif"
    iio.imwrite(path, frames, duration=70, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.info["duration"] == 70 and im.info["loop"] == 0
    meta = iio.immeta(path)
    assert meta["duration"] == 70 and meta["loop"] == 0
    with pytest.warns(DeprecationWarning, match="`fps` is no longer supported"):
        iio.imwrite(path, frames, fps=20)
    assert iio.immeta(path)["duration"] == 50


def test_gif_batch_as_array_and_appends(tmp_path):
    frames = np.stack([np.full((4, 6, 3), v, np.uint8) for v in (0, 60, 120, 180)])
    path = tmp_path / "arr.gif"
    iio.imwrite(path, frames)  # a 4-D array is a batch
    np.testing.assert_array_equal(iio.imread(path), frames)
    path2 = tmp_path / "appended.gif"
    with iio.imopen(path2, "w") as f:  # one frame per call, as v2's append_data
        for frame in frames:
            f.write(frame)
    np.testing.assert_array_equal(iio.imread(path2), frames)
    gray = np.stack([np.full((4, 6), v, np.uint8) for v in (0, 60, 120)])
    iio.imwrite(path, gray)  # (N, H, W) with W > 4 is a batch of gray frames
    assert iio.imread(path).shape == (3, 4, 6, 3)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".gif", ".jpg"])
def test_gray_and_alpha_layouts(ext):
    gray = np.random.default_rng(0).integers(0, 256, (8, 9), dtype=np.uint8)
    back = iio.imread(iio.imwrite("<bytes>", gray, extension=ext), index=0)
    if ext == ".gif":
        back = back[..., 0]
    if ext == ".jpg":
        assert back.shape == gray.shape
    else:
        np.testing.assert_array_equal(back, gray)
    rgba = np.random.default_rng(1).integers(0, 256, (8, 9, 4), dtype=np.uint8)
    if ext == ".png":
        np.testing.assert_array_equal(iio.imread(iio.imwrite("<bytes>", rgba, extension=ext)), rgba)
    elif ext in (".bmp", ".jpg"):  # Pillow reads a 32-bit BMP back as RGB: refuse alpha
        with pytest.raises(ShapeError, match="alpha"):
            iio.imwrite("<bytes>", rgba, extension=ext)
    la = np.random.default_rng(2).integers(0, 256, (8, 9, 2), dtype=np.uint8)
    if ext == ".png":
        np.testing.assert_array_equal(iio.imread(iio.imwrite("<bytes>", la, extension=ext)), la)
    else:
        with pytest.raises(ShapeError, match="alpha"):
            iio.imwrite("<bytes>", la, extension=ext)


def test_jpeg_rejects_alpha_naming_the_file(tmp_path):
    path = tmp_path / "x.jpg"
    with pytest.raises(ShapeError, match="no alpha") as info:
        iio.imwrite(path, np.zeros((4, 4, 4), np.uint8))
    assert str(path) in str(info.value)
    assert not path.exists()


@pytest.mark.parametrize("shape", [(5, 6, 1), (5,), (2, 3, 4, 5, 6), (0, 4)])
def test_bad_shapes_name_the_file(tmp_path, shape):
    path = tmp_path / "bad.png"
    with pytest.raises(ShapeError) as info:
        iio.imwrite(path, np.zeros(shape, np.uint8))
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_one_channel_message(tmp_path):
    with pytest.raises(ShapeError, match="one colour channel"):
        iio.imwrite(tmp_path / "x.png", np.zeros((5, 6, 1), np.uint8))


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_single_image_formats_reject_batches(tmp_path, ext):
    path = tmp_path / f"many{ext}"
    with pytest.raises(ShapeError, match="single image") as info:
        iio.imwrite(path, [np.zeros((4, 4, 3), np.uint8)] * 2)
    assert str(path) in str(info.value)
    # a batch of one is fine
    iio.imwrite(path, [np.zeros((4, 4, 3), np.uint8)])
    assert iio.imread(path).shape == (4, 4, 3)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".gif"])
def test_bool_images_are_one_bit(ext):
    mask = np.random.default_rng(4).random((7, 9)) > 0.5
    data = iio.imwrite("<bytes>", mask, extension=ext)
    back = iio.imread(data, index=0)
    if ext == ".gif":  # GIF reads as RGB
        back = back[..., 0] > 0
    assert back.dtype == bool
    np.testing.assert_array_equal(back, mask)
    if ext == ".png":
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode == "1"
        assert iio.improps(data).dtype == bool


def test_bool_jpeg_is_gray_0_255():
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    back = iio.imread(iio.imwrite("<bytes>", mask, extension=".jpg"))
    assert back.dtype == np.uint8 and back[8, 8] > 200 and back[0, 0] < 50


def test_mode_keyword_on_write():
    image = smooth_rgb(5)
    data = iio.imwrite("<bytes>", image, extension=".png", mode="L")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L"


def test_format_keyword_and_missing_format():
    buf = io.BytesIO()
    iio.imwrite(buf, smooth_rgb(), plugin="pillow", format="PNG")
    assert buf.getvalue().startswith(b"\x89PNG")
    with pytest.raises(FormatError, match="which format"):
        iio.imwrite(io.BytesIO(), smooth_rgb(), plugin="pillow")


def test_float_and_wide_ints_convert_with_warning():
    from imgio._kernels import to_uint

    def expected(image, bits):
        with pytest.warns(UserWarning, match="Lossy conversion"):
            return to_uint(image, bits)

    ramp = np.linspace(0, 1, 48, dtype=np.float64).reshape(6, 8)
    # one warning, imageio's wording (users' warning filters keep working)
    with pytest.warns(UserWarning, match="Lossy conversion from float64 to uint16") as rec:
        data = iio.imwrite("<bytes>", ramp, extension=".png")
    assert len(rec) == 1
    back = iio.imread(data)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, expected(ramp, 16))
    rgb = np.stack([ramp] * 3, axis=-1).astype(np.float32)
    with pytest.warns(UserWarning, match="Lossy conversion from float32 to uint8"):
        data = iio.imwrite("<bytes>", rgb, extension=".png")
    np.testing.assert_array_equal(iio.imread(data), expected(rgb, 8))
    wide = (np.arange(48, dtype=np.int32) * 1000).reshape(6, 8)
    with pytest.warns(UserWarning, match="Lossy conversion from int32 to uint8"):
        data = iio.imwrite("<bytes>", wide, extension=".jpg")
    assert iio.imread(data).dtype == np.uint8
    rgb16 = (np.arange(6 * 8 * 3, dtype=np.uint16) * 400).reshape(6, 8, 3)
    with pytest.warns(UserWarning, match="Lossy conversion from uint16 to uint8"):
        data = iio.imwrite("<bytes>", rgb16, extension=".png")
    np.testing.assert_array_equal(iio.imread(data), expected(rgb16, 8))


def test_non_numeric_is_a_dtype_error():
    with pytest.raises(DTypeError):
        iio.imwrite("<bytes>", np.array([["a", "b"], ["c", "d"]]), extension=".png")


def test_write_does_not_keep_the_callers_buffer(tmp_path):
    path = tmp_path / "x.png"
    image = np.zeros((4, 4), np.uint8)
    with iio.imopen(path, "w") as f:
        f.write(image)
        image[:] = 255  # changed after write(), before the file is encoded
    assert iio.imread(path).max() == 0


def test_write_rejects_unknown_extension_with_explicit_plugin(tmp_path):
    with pytest.raises(FormatError, match="pillow"):
        iio.imwrite(tmp_path / "x.nope", np.zeros((4, 4), np.uint8), plugin="pillow")


# -- damaged and hostile files ----------------------------------------------------------
@pytest.mark.parametrize("name", ["chelsea.png", "chelsea.jpg", "chelsea.bmp",
                                  "newtonscradle.gif"])
def test_truncated_real_files_raise(tmp_path, name):
    data = (DATA / name).read_bytes()
    for frac in (0.3, 0.9):
        cut = tmp_path / f"cut{Path(name).suffix}"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(CorruptFileError) as info:
            iio.imread(cut)
        assert isinstance(info.value, OSError)
        assert str(cut) in str(info.value)


def test_truncated_load_flag_stays_off():
    from PIL import ImageFile
    import imgio.plugins.pillow  # noqa: F401
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_damaged_header_is_corrupt_not_unknown(tmp_path):
    data = bytearray((DATA / "camera.png").read_bytes())
    data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError) as info:
        iio.imread(path)
    assert str(path) in str(info.value)


def test_decompression_bomb(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    iio.imwrite(path, np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageTooLargeError) as info:
        iio.imread(path)
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ImgioError)
    assert str(path) in str(info.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert iio.imread(path).shape == (100, 100)


# -- plugin choice and import hygiene -------------------------------------------------------
def test_aliases_select_the_plugin():
    for name in ("pillow", "PIL", "PNG-PIL", "png-pil", "JPEG-PIL", "GIF-PIL", "BMP-PIL"):
        assert iio.imread(DATA / "camera.png", plugin=name).shape == (512, 512)


def test_explicit_pillow_reads_other_pillow_formats():
    buf = io.BytesIO()
    Image.fromarray(np.full((3, 4), 7, np.uint8)).save(buf, format="PPM")
    np.testing.assert_array_equal(iio.imread(buf.getvalue(), plugin="pillow"),
                                  np.full((3, 4), 7, np.uint8))


def test_registry_entry():
    from imgio.core import registry
    spec = registry.get_spec("pillow")
    assert spec.modes == "iI" and spec.backend == "PIL"
    for ext in (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".apng"):
        assert spec in registry.known_extensions()[ext]


def test_importing_imgio_does_not_import_pil():
    code = ("import sys, imgio, imgio.v3, imgio.core.registry; "
            "assert 'PIL' not in sys.modules, 'PIL imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_file_object_not_at_start():
    data = (DATA / "camera.png").read_bytes()
    buf = io.BytesIO(b"junk" + data)
    buf.seek(4)
    assert iio.imread(buf).shape == (512, 512)


# -- the plain-PNG fast path (libpng through imagecodecs), Pillow as the oracle --------
import struct as _struct  # noqa: E402
import zlib as _zlib  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from imgio.plugins import pillow as _pillow_plugin  # noqa: E402

#: colour type and channels of each array layout a PNG stores
_LAYOUTS = {"L": (0, 1), "LA": (4, 2), "RGB": (2, 3), "RGBA": (6, 4)}
#: Adam7 passes: (row start, col start, row step, col step)
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
          (0, 1, 2, 2), (1, 0, 2, 1))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (_struct.pack(">I", len(data)) + kind + data
            + _struct.pack(">I", _zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png_bytes(arr, colour, *, interlace=False, extra=(), bad_idat_crc=False,
               split_idat=1, after_idat=()):
    """A PNG written by hand: any depth-8/16 layout, Adam7 or not, chosen chunks.

    Pillow cannot write interlaced PNGs, and Pillow writing the oracle's input would
    make the oracle judge its own writer; this is a third, independent writer."""
    depth = 16 if arr.dtype == np.uint16 else 8
    h, w = arr.shape[:2]
    px = arr.reshape(h, w, -1).astype(">u2" if depth == 16 else "u1")
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    raw = bytearray()
    for r0, c0, rs, cs in passes:
        sub = px[r0::rs, c0::cs]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\0" + row.tobytes()  # filter type 0 (None)
    idat = _zlib.compress(bytes(raw), 6)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", _struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, int(interlace)))
    for kind, data in extra:
        out += _chunk(kind, data)
    step = -(-len(idat) // split_idat)
    for i in range(0, len(idat), step):
        c = _chunk(b"IDAT", idat[i:i + step])
        if bad_idat_crc:
            c = c[:-4] + bytes([c[-4] ^ 0xFF]) + c[-3:]
        out += c
    for kind, data in after_idat:
        out += _chunk(kind, data)
    return out + _chunk(b"IEND", b"")


def _pillow_only(monkeypatch):
    """The plugin with the fast path switched off: the Pillow path (the oracle)."""
    monkeypatch.setattr(_pillow_plugin, "_decode_plain_png", lambda *a: None)


def _spy(monkeypatch):
    """Count the calls of the fast path that produced pixels."""
    calls = []
    real = _pillow_plugin._decode_plain_png

    def spy(*args):
        arr = real(*args)
        calls.append(arr is not None)
        return arr
    monkeypatch.setattr(_pillow_plugin, "_decode_plain_png", spy)
    return calls


def _all_reads(src):
    """Everything a user reads from one file: pixels, props, meta, iter, v2."""
    import imgio.v2 as iio2
    arr = iio.imread(src)
    props = iio.improps(src)
    meta = iio.immeta(src)
    frames = list(iio.imiter(src))
    v2 = iio2.imread(src)
    return arr, props, meta, frames, v2


def _same_reads(got, want):
    (a, p, m, f, v2), (a0, p0, m0, f0, v20) = got, want
    assert a.dtype == a0.dtype and a.shape == a0.shape and a.flags.writeable
    np.testing.assert_array_equal(a, a0)
    assert (p.shape, p.dtype, p.n_images, p.is_batch) == \
        (p0.shape, p0.dtype, p0.n_images, p0.is_batch)
    assert m.keys() == m0.keys()
    for k in m:
        np.testing.assert_equal(m[k], m0[k])
    assert len(f) == len(f0) == 1
    np.testing.assert_array_equal(f[0], f0[0])
    assert type(v2) is type(v20) and v2.dtype == v20.dtype
    np.testing.assert_array_equal(v2, v20)
    assert v2.meta.keys() == v20.meta.keys()


_EXTRAS = {
    "none": (),
    "gAMA": ((b"gAMA", _struct.pack(">I", 45455)),),
    "tEXt": ((b"tEXt", b"Comment\0made by hand"),),
    "pHYs": ((b"pHYs", _struct.pack(">IIB", 3780, 3780, 1)),),
    "iCCP": ((b"iCCP", b"fake\0\0" + _zlib.compress(b"not really a profile")),),
    "sRGB": ((b"sRGB", b"\0"),),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=st.sampled_from(sorted(_LAYOUTS) + ["I;16", "LA16", "RGB16", "RGBA16"]),
       h=st.integers(1, 40), w=st.integers(1, 40), interlace=st.booleans(),
       extra=st.sampled_from(sorted(_EXTRAS)), trns=st.booleans(),
       split=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_png_fast_path_matches_pillow(layout, h, w, interlace, extra, trns, split, seed):
    # pairs of (layout, depth) x interlace x ancillary chunks x IDAT splits, Pillow
    # (the plugin with the fast path off) as the oracle for every read function
    depth16 = layout == "I;16" or layout.endswith("16")
    base = "L" if layout == "I;16" else layout.removesuffix("16")
    colour, channels = _LAYOUTS[base]
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if depth16 else np.uint8
    arr = rng.integers(0, np.iinfo(dtype).max + 1, (h, w, channels), dtype=dtype)
    arr = arr[..., 0] if channels == 1 else arr
    chunks = list(_EXTRAS[extra])
    if trns and colour in (0, 2):  # a transparent colour: Pillow keeps the mode
        chunks.append((b"tRNS", b"\0\x07" * (1 if colour == 0 else 3)))
    data = _png_bytes(arr, colour, interlace=interlace, extra=chunks, split_idat=split)
    with pytest.MonkeyPatch.context() as mp:
        _pillow_only(mp)
        want = _all_reads_quiet(data)
    with pytest.MonkeyPatch.context() as mp:
        calls = _spy(mp)
        got = _all_reads_quiet(data)
    _same_reads(got, want)
    # a tRNS colour (libpng would add alpha) and the fake iCCP (libpng warns "too
    # short") go to Pillow; interlaced files too (Pillow's path, not libpng's)
    plain = (not interlace and (not depth16 or layout == "I;16")
             and not (trns and colour in (0, 2)) and extra != "iCCP")
    assert (any(calls)) == plain  # the fast path took exactly the plain PNGs
    if plain:
        np.testing.assert_array_equal(got[0], arr)  # and the pixels are the written ones


def _all_reads_quiet(data):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 16-bit colour: Pillow's 8 bits
        return _all_reads(data)


@pytest.mark.parametrize("kind", ["path", "bytes"])
@pytest.mark.parametrize("mode,arr", [
    ("L", np.arange(35 * 29, dtype=np.uint8).reshape(35, 29)),
    ("RGB", smooth_rgb(3, (31, 45))),
    ("RGBA", np.random.default_rng(5).integers(0, 256, (17, 19, 4), dtype=np.uint8)),
    ("LA", np.random.default_rng(6).integers(0, 256, (17, 19, 2), dtype=np.uint8)),
    ("I;16", np.random.default_rng(7).integers(0, 65536, (23, 21), dtype=np.uint16)),
])
def test_png_fast_path_on_pillow_written_files(tmp_path, monkeypatch, kind, mode, arr):
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    src = path if kind == "path" else path.read_bytes()
    with Image.open(path) as im:
        assert im.mode == mode
        oracle = np.asarray(im)
    calls = _spy(monkeypatch)
    got = iio.imread(src)
    assert calls == [True]
    assert got.dtype == oracle.dtype and got.shape == oracle.shape and got.flags.writeable
    np.testing.assert_array_equal(got, oracle)


def test_png_fast_path_declines_palette_apng_and_one_bit(tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    rgb = smooth_rgb(1, (12, 14))
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(iio.imread(tmp_path / "p.png"),
                                  pil_array(tmp_path / "p.png", mode="RGB"))
    Image.fromarray(rgb[..., 0] > 100).save(tmp_path / "b.png")
    assert iio.imread(tmp_path / "b.png").dtype == bool
    iio.imwrite(tmp_path / "a.png", np.stack([rgb, rgb[::-1]]))
    assert iio.imread(tmp_path / "a.png").shape == (2, 12, 14, 3)
    assert calls == []


def test_png_fast_path_keywords(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    rgb = smooth_rgb(2, (9, 11))
    Image.fromarray(rgb).save(path)
    calls = _spy(monkeypatch)
    np.testing.assert_array_equal(iio.imread(path, mode="RGB"), rgb)  # its own mode: fast
    np.testing.assert_array_equal(iio.imread(path, index=0), rgb)
    assert iio.imread(path, index=...).shape == (1, 9, 11, 3)  # a stack: Pillow's way
    assert iio.imread(path, mode="L").shape == (9, 11)  # converted: Pillow's way
    assert calls == [True, True]


def test_png_damaged_idat_gives_what_pillow_gives(monkeypatch):
    # libpng refuses a bad IDAT CRC; Pillow's path then decides, as without the fast path
    arr = np.random.default_rng(8).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    data = _png_bytes(arr, 2, bad_idat_crc=True)
    calls = _spy(monkeypatch)
    try:
        got = iio.imread(data)
    except CorruptFileError:
        got = None
    assert calls == [False]
    monkeypatch.undo()
    _pillow_only(monkeypatch)
    try:
        want = iio.imread(data)
    except CorruptFileError:
        want = None
    assert (got is None) == (want is None)
    if got is not None:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.97])
def test_png_truncated_is_corrupt_on_the_fast_path(cut):
    arr = np.random.default_rng(9).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    data = _png_bytes(arr, 2, split_idat=3)
    with pytest.raises(CorruptFileError):
        iio.imread(data[: int(len(data) * cut)])


def test_png_fast_path_large_image_matches_pillow(tmp_path):
    # 1024 x 1536 RGBA: many libpng rows and zlib blocks
    rng = np.random.default_rng(10)
    arr = (rng.integers(0, 8, (1024, 1536, 4)) * 32).astype(np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(arr).save(path)
    np.testing.assert_array_equal(iio.imread(path), arr)


def test_png_libpng_warnings_send_the_file_to_pillow_without_a_log_line(caplog, monkeypatch):
    import logging
    arr = np.random.default_rng(11).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    data = _png_bytes(arr, 2, extra=_EXTRAS["iCCP"])
    calls = _spy(monkeypatch)
    with caplog.at_level(logging.DEBUG):
        np.testing.assert_array_equal(iio.imread(data), arr)
        import imagecodecs  # other uses of imagecodecs still log libpng's warnings
        imagecodecs.png_decode(data)
    assert calls == [False]
    assert [r.getMessage() for r in caplog.records if r.name == "imagecodecs"] == \
        ["PNG warning: iCCP: too short"]


def test_fast_path_falls_back_only_for_codec_errors(tmp_path, monkeypatch):
    """libpng's refusals (PngError, a RuntimeError) hand the file to Pillow; an error of
    any other kind (imgio calling the decoder wrongly) is not hidden as a fallback."""
    from imgio.plugins import pillow_png
    import imagecodecs
    path = tmp_path / "plain.png"
    img = (np.arange(32 * 24 * 3) % 251).astype(np.uint8).reshape(32, 24, 3)
    Image.fromarray(img).save(path)
    iio.imread(path)  # loads the decoder

    def refuses(data):
        raise imagecodecs.PngError("refused")
    monkeypatch.setattr(pillow_png, "_png_decode", refuses)
    np.testing.assert_array_equal(iio.imread(path), img)  # Pillow decoded it

    def bug(data):
        raise TypeError("imgio passed the wrong argument")
    monkeypatch.setattr(pillow_png, "_png_decode", bug)
    with pytest.raises(TypeError, match="wrong argument"):
        iio.imread(path)
