"""MetaMorph STK and Zeiss LSM files, generated here (tifffile cannot write either).

Both flavours are written with ``tifffile.imwrite``/``TiffWriter`` plus the
vendor tag(s) as ``extratags``; what tifffile's writer cannot express is then
patched in place in the classic little-endian IFD:

STK
    UIC1tag (33628) is a list of ``(id, value-or-offset)`` LONG pairs whose
    fractions and strings live at absolute file offsets; UIC2tag (33629) is
    declared as ``n`` RATIONALs but holds six LONGs per plane (Z distance
    num/den, created date/time, modified date/time); UIC3tag (33630) holds
    ``n`` wavelength RATIONALs; UIC4tag (33631) is
    declared with count ``n`` and holds inline ``(uint16 id, value)`` records
    ended by id 0.  The writer sets each count from the packed byte length,
    so the counts (and UIC1's offsets, which need the tag's final position)
    are fixed after writing.  Planes 1..n-1 are appended right after the
    first page's strip, which ``imwrite`` places at the end of the file, so
    the n planes form one contiguous block as in a real STK file.
LSM
    Image pages alternate with reduced (NewSubfileType=1) thumbnail pages,
    and the first page carries a CZ_LSMINFO (34412) struct in the LSM 2.0
    layout (StructureSize tells tifffile to read only that part).

tifffile reports problems in vendor metadata through :mod:`logging`, not
:mod:`warnings`, so ``filterwarnings = error`` would not catch them: every
fixture asserts that parsing its file logs nothing at WARNING or above.
"""
import logging
import struct

import numpy as np
import pytest
import tifffile

import imgio.v3 as iio

# -- helpers --------------------------------------------------------------------------


def _ifd0_entries(buf: bytes) -> dict[int, tuple[int, int, int, int]]:
    """code -> (entry position, dtype, count, value/offset) of a classic LE TIFF's IFD 0."""
    assert buf[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", buf, 4)[0]
    entries = {}
    for i in range(struct.unpack_from("<H", buf, ifd)[0]):
        pos = ifd + 2 + 12 * i
        code, dtype, count, value = struct.unpack_from("<HHII", buf, pos)
        entries[code] = (pos, dtype, count, value)
    return entries


def _assert_quiet_parse(path, caplog):
    """tifffile parses the file, its series and flavour metadata without a logged warning."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tifffile"), tifffile.TiffFile(path) as tif:
        _ = tif.series, tif.stk_metadata, tif.lsm_metadata
        tif.asarray()
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []


# -- MetaMorph STK ----------------------------------------------------------------------
STK_N, STK_H, STK_W = 3, 6, 7
STK_X_CAL = (13, 40)      # 0.325 um per pixel
STK_Y_CAL = (13, 20)      # 0.65 um per pixel (non-square, to tell X from Y)
STK_Z_DIST = (5, 2)       # 2.5 um between planes
STK_UNITS = "um"
STK_NAME = "imgio-stk"
JULIAN_DAY = 2460310      # 2024-01-01 as MetaMorph (and tifffile) count days
STK_WAVELENGTHS = (488, 561, 640)


def _pascal(text: str) -> bytes:
    """MetaMorph string: uint32 length (counting a trailing NUL) + bytes + NUL."""
    raw = text.encode("ascii") + b"\x00"
    return struct.pack("<I", len(raw)) + raw


def _uic1(base: int) -> tuple[bytes, int]:
    """UIC1tag value for a block starting at file offset ``base``: (bytes, entry count)."""
    # (id, kind, payload): kind "int" is inline, "off" is stored at an offset
    items = [
        (0, "int", 1),                                    # AutoScale
        (3, "int", 1),                                    # SpatialCalibration on
        (4, "off", struct.pack("<2I", *STK_X_CAL)),       # XCalibration
        (5, "off", struct.pack("<2I", *STK_Y_CAL)),       # YCalibration
        (6, "off", _pascal(STK_UNITS)),                   # CalibrationUnits
        (7, "off", _pascal(STK_NAME)),                    # Name
        (16, "off", struct.pack("<2I", JULIAN_DAY, 3_600_000)),  # CreateTime 01:00
    ]
    extra = base + 8 * len(items)
    head, tail = b"", b""
    for tagid, kind, payload in items:
        if kind == "int":
            head += struct.pack("<2I", tagid, payload)
        else:
            head += struct.pack("<2I", tagid, extra + len(tail))
            tail += payload
            tail += b"\x00" * (-len(tail) % 4)  # LONG alignment (packed LONG data)
    return head + tail, len(items)


def _uic2() -> bytes:
    """Per plane: ZDistance num/den, DateCreated, TimeCreated, DateModified, TimeModified."""
    out = b""
    for i in range(STK_N):
        ms = 3_600_000 + 1000 * i
        out += struct.pack("<6I", *STK_Z_DIST, JULIAN_DAY, ms, JULIAN_DAY, ms + 500)
    return out


def _uic3() -> bytes:
    return b"".join(struct.pack("<2I", w, 1) for w in STK_WAVELENGTHS)


def _uic4() -> bytes:
    """Inline records: StagePosition (28) and CameraChipOffset (29), then id 0."""
    stage = np.array([[[10 * i, 1], [20 * i, 1]] for i in range(STK_N)], "<u4")
    chip = np.zeros((STK_N, 2, 2), "<u4")
    chip[..., 1] = 1
    return (struct.pack("<H", 28) + stage.tobytes() + struct.pack("<H", 29) + chip.tobytes()
            + struct.pack("<H", 0))


@pytest.fixture
def stk_file(tmp_path, caplog):
    path = tmp_path / "planes.stk"
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4096, size=(STK_N, STK_H, STK_W), dtype=np.uint16)
    uic1, n_uic1 = _uic1(0)
    tifffile.imwrite(path, data[0], photometric="minisblack", metadata=None, extratags=[
        (33628, 4, None, uic1, True),
        (33629, 5, None, _uic2(), True),
        (33630, 5, None, _uic3(), True),
        (33631, 4, None, _uic4() + b"\x00" * (-len(_uic4()) % 4), True),
    ])
    buf = bytearray(path.read_bytes())
    tags = _ifd0_entries(buf)
    # counts the writer derived from byte lengths -> the counts STK declares
    for code, count in ((33628, n_uic1), (33629, STK_N), (33630, STK_N), (33631, STK_N)):
        struct.pack_into("<I", buf, tags[code][0] + 4, count)
    # UIC1 offsets are absolute: rebuild the block for its final position
    base = tags[33628][3]
    uic1_final, _ = _uic1(base)
    assert len(uic1_final) == len(uic1)
    buf[base:base + len(uic1)] = uic1_final
    # planes 1.. right after the first plane's strip, which ends the file
    strip_offset, strip_bytes = tags[273][3], tags[279][3]
    assert strip_offset + strip_bytes == len(buf) and strip_bytes == data[0].nbytes
    buf += data[1:].tobytes()
    path.write_bytes(bytes(buf))
    _assert_quiet_parse(path, caplog)
    return path, data


def test_stk_generated_file_is_recognised(stk_file):
    path, data = stk_file
    with tifffile.TiffFile(path) as tif:
        assert tif.is_stk and not tif.is_shaped and not tif.is_lsm
        ser = tif.series[0]
        assert ser.kind == "stk" and ser.shape == data.shape and ser.axes == "ZYX"
        meta = tif.stk_metadata
        assert meta["NumberPlanes"] == STK_N
        assert meta["XCalibration"] == pytest.approx(0.325)
        assert meta["YCalibration"] == pytest.approx(0.65)
        assert meta["CalibrationUnits"] == STK_UNITS and meta["Name"] == STK_NAME
        np.testing.assert_allclose(meta["ZDistance"], 2.5)
        np.testing.assert_allclose(meta["Wavelengths"], STK_WAVELENGTHS)
        assert meta["StagePosition"].shape == (STK_N, 2)
        assert meta["DatetimeCreated"][0] == np.datetime64("2024-01-01T01:00:00")
        np.testing.assert_array_equal(tif.asarray(), data)


@pytest.mark.parametrize("flavour", ["stk_file", "lsm_file"])
def test_stk_and_lsm_imread_equals_tifffile(flavour, request):
    path, data = request.getfixturevalue(flavour)
    image = iio.imread(path)
    ref = tifffile.imread(path)
    assert image.shape == ref.shape == data.shape and image.dtype == ref.dtype == data.dtype
    np.testing.assert_array_equal(image, ref)
    np.testing.assert_array_equal(iio.imread(path, index=0), data)
    np.testing.assert_array_equal(iio.imread(path, fast=False), data)


def test_stk_properties_axes_spacing(stk_file):
    path, data = stk_file
    props = iio.improps(path)
    assert props.shape == iio.imread(path).shape == data.shape
    assert props.dtype == data.dtype
    with tifffile.TiffFile(path) as tif:
        assert props.axes == tif.series[0].axes == "ZYX"
    assert props.spacing == pytest.approx((2.5, 0.65, 0.325))
    assert props.units == ("um", "um", "um")


def test_stk_immeta(stk_file):
    path, _ = stk_file
    meta = iio.immeta(path)
    assert meta["is_stk"] is True and meta["is_lsm"] is False
    stk = meta["stk_metadata"]
    assert "error" not in stk
    assert stk["NumberPlanes"] == STK_N and stk["Name"] == STK_NAME
    series = iio.immeta(path, index=0)
    assert series["axes"] == "ZYX" and series["shape"] == (STK_N, STK_H, STK_W)
    assert series["series_kind"] == "stk"
    assert series["spacing"] == pytest.approx((2.5, 0.65, 0.325))


# -- Zeiss LSM -----------------------------------------------------------------------------
LSM_T, LSM_Z, LSM_H, LSM_W = 2, 3, 8, 10
LSM_VOXEL_M = (0.2e-6, 0.4e-6, 1.5e-6)  # X, Y, Z in metres
LSM_DT = 2.5                           # seconds between time points
LSM_MAGIC = 0x0400494C                 # LSM 4


def _cz_lsminfo() -> bytes:
    """CZ_LSMINFO in the LSM 2.0 layout (up to OffsetNextRecording), little-endian."""
    fields = [  # (name, format, value), in file order
        ("MagicNumber", "I", LSM_MAGIC), ("StructureSize", "i", 0),
        ("DimensionX", "i", LSM_W), ("DimensionY", "i", LSM_H), ("DimensionZ", "i", LSM_Z),
        ("DimensionChannels", "i", 1), ("DimensionTime", "i", LSM_T),
        ("DataType", "i", 2),  # 12-bit unsigned, stored as uint16
        ("ThumbnailX", "i", LSM_W // 2), ("ThumbnailY", "i", LSM_H // 2),
        ("VoxelSizeX", "d", LSM_VOXEL_M[0]), ("VoxelSizeY", "d", LSM_VOXEL_M[1]),
        ("VoxelSizeZ", "d", LSM_VOXEL_M[2]),
        ("OriginX", "d", 0.0), ("OriginY", "d", 0.0), ("OriginZ", "d", 0.0),
        ("ScanType", "H", 6),  # time series stack: TZCYX
        ("SpectralScan", "H", 0), ("TypeOfData", "I", 1),
        ("OffsetVectorOverlay", "I", 0), ("OffsetInputLut", "I", 0),
        ("OffsetOutputLut", "I", 0), ("OffsetChannelColors", "I", 0),
        ("TimeIntervall", "d", LSM_DT),
        ("OffsetChannelDataTypes", "I", 0), ("OffsetScanInformation", "I", 0),
        ("OffsetKsData", "I", 0), ("OffsetTimeStamps", "I", 0), ("OffsetEventList", "I", 0),
        ("OffsetRoi", "I", 0), ("OffsetBleachRoi", "I", 0), ("OffsetNextRecording", "I", 0),
    ]
    fmt = "<" + "".join(f for _, f, _ in fields)
    values = [v for _, _, v in fields]
    values[1] = struct.calcsize(fmt)
    return struct.pack(fmt, *values)


@pytest.fixture
def lsm_file(tmp_path, caplog):
    path = tmp_path / "stack.lsm"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4096, size=(LSM_T, LSM_Z, LSM_H, LSM_W), dtype=np.uint16)
    with tifffile.TiffWriter(path) as tw:
        for i, plane in enumerate(data.reshape(-1, LSM_H, LSM_W)):
            extra = [(34412, 1, None, _cz_lsminfo(), True)] if i == 0 else []
            tw.write(plane, photometric="minisblack", metadata=None, contiguous=False,
                     extratags=extra)
            thumb = (plane[::2, ::2] >> 4).astype(np.uint8)
            tw.write(thumb, photometric="minisblack", metadata=None, contiguous=False,
                     subfiletype=1)
    _assert_quiet_parse(path, caplog)
    return path, data


def test_lsm_generated_file_is_recognised(lsm_file):
    path, data = lsm_file
    with tifffile.TiffFile(path) as tif:
        assert tif.is_lsm and not tif.is_shaped and not tif.is_stk
        assert len(tif.pages) == 2 * LSM_T * LSM_Z
        main, thumbs = tif.series
        assert main.kind == "lsm" and main.shape == data.shape and main.axes == "TZYX"
        assert thumbs.shape[-2:] == (LSM_H // 2, LSM_W // 2)
        lsm = tif.lsm_metadata
        assert lsm["DimensionTime"] == LSM_T and lsm["DimensionZ"] == LSM_Z
        assert lsm["VoxelSizeZ"] == LSM_VOXEL_M[2] and lsm["TimeIntervall"] == LSM_DT
        np.testing.assert_array_equal(tif.asarray(), data)


def test_lsm_properties_axes_spacing(lsm_file):
    path, data = lsm_file
    props = iio.improps(path)
    assert props.shape == iio.imread(path).shape == data.shape
    with tifffile.TiffFile(path) as tif:
        assert props.axes == tif.series[0].axes == "TZYX"
    assert props.spacing == pytest.approx((LSM_DT, 1.5, 0.4, 0.2))
    assert props.units == ("s", "um", "um", "um")


def test_lsm_immeta(lsm_file):
    path, _ = lsm_file
    meta = iio.immeta(path)
    assert meta["is_lsm"] is True and meta["is_stk"] is False
    lsm = meta["lsm_metadata"]
    assert "error" not in lsm
    assert lsm["ScanType"] == 6 and lsm["DimensionX"] == LSM_W
    series = iio.immeta(path, index=0)
    assert series["axes"] == "TZYX" and series["series_kind"] == "lsm"
    assert series["spacing"] == pytest.approx((LSM_DT, 1.5, 0.4, 0.2))
