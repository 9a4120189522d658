"""One rule for physical metadata (issue 19), checked on instrument-like files.

The files are built here with tifffile the way the instruments write them
(tags and text blocks as the vendors lay them out); the expected numbers are
the ones the instrument's software shows for such a file.
"""
from __future__ import annotations

import struct

import h5py
import numpy as np
import pytest
import tifffile

import imgio.v3 as iio
from imgio.plugins.physical import normalize_unit


# -- builders -------------------------------------------------------------------------------
def write_stk(path, vol, xcal, ycal, zdist, unit, dpi=72):
    """A MetaMorph STK: planes stored contiguously behind one page, calibration in UIC tags.

    UIC4 holds XCalibration, YCalibration (rationals) and CalibrationUnits (a
    Pascal string) inline; UIC2 one (ZDistance, dates) record per plane; UIC1
    must exist for readers to call the file STK.  MetaMorph also writes a
    72 dpi resolution, which is not the pixel size.
    """
    planes, ny, nx = vol.shape
    uic4 = (struct.pack("<HII", 4, int(round(xcal * 10000)), 10000)
            + struct.pack("<HII", 5, int(round(ycal * 10000)), 10000)
            + struct.pack("<HI", 6, len(unit) + 1) + unit.encode() + b"\0"
            + struct.pack("<H", 0))
    uic4 += b"\0" * (-len(uic4) % 4)
    uic2 = np.zeros((planes, 6), "<u4")
    uic2[:, 0], uic2[:, 1] = int(round(zdist * 1000)), 1000
    uic2[:, 2] = uic2[:, 4] = 2460646  # julian day of 2024-12-01
    uic2[:, 3] = uic2[:, 5] = np.arange(planes) * 1000
    extratags = [(33628, 4, 4, np.zeros(4, "<u4").tobytes(), True),
                 (33629, 4, uic2.size, uic2.tobytes(), True),
                 (33631, 4, len(uic4) // 4, uic4, True)]
    tifffile.imwrite(path, vol.reshape(planes * ny, nx), photometric="minisblack",
                     resolution=(dpi, dpi), resolutionunit="INCH", rowsperstrip=planes * ny,
                     extratags=extratags, metadata=None, description="MetaMorph\0")
    # the tags as MetaMorph counts them: one page of ny rows, one UIC2/UIC4 record per plane
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        length = tags[257]
        patches = [(length.valueoffset, struct.pack("<H" if length.dtype == 3 else "<I", ny)),
                   (tags[33628].offset + 4, struct.pack("<I", 2)),
                   (tags[33629].offset + 2, struct.pack("<HI", 5, planes)),
                   (tags[33631].offset + 4, struct.pack("<I", planes))]
    with open(path, "r+b") as fh:
        for pos, data in patches:
            fh.seek(pos)
            fh.write(data)


def write_lsm(path, vol, voxel_m, interval_s=0.0):
    """A Zeiss LSM: a CZ_LSMINFO record (LSM 2.0 layout, voxel sizes in meters) on
    the first page, each image page followed by its thumbnail page."""
    nz, ny, nx = vol.shape
    fields = []
    for name, typestr in tifffile.TIFF.CZ_LSMINFO:
        fields.append((name, typestr))
        if name == "OffsetNextRecording":  # the end of the LSM 2.0 structure
            break
    rec = np.zeros(1, np.dtype(fields).newbyteorder("<"))
    rec["MagicNumber"] = 50350412
    rec["StructureSize"] = rec.dtype.itemsize
    rec["DimensionX"], rec["DimensionY"], rec["DimensionZ"] = nx, ny, nz
    rec["DimensionChannels"] = rec["DimensionTime"] = 1
    rec["DataType"] = 2  # 12-bit/16-bit
    rec["ThumbnailX"], rec["ThumbnailY"] = max(1, nx // 4), max(1, ny // 4)
    rec["VoxelSizeX"], rec["VoxelSizeY"], rec["VoxelSizeZ"] = voxel_m[2], voxel_m[1], voxel_m[0]
    rec["ScanType"] = 0  # a normal x-y-z scan
    rec["TimeIntervall"] = interval_s
    data = rec.tobytes()
    data += b"\0" * (-len(data) % 4)
    with tifffile.TiffWriter(path) as tif:
        for z in range(nz):
            tif.write(vol[z], photometric="minisblack", metadata=None,
                      extratags=[(34412, 4, len(data) // 4, data, True)] if z == 0 else [])
            tif.write(vol[z, ::4, ::4].astype(np.uint8), photometric="minisblack",
                      subfiletype=1, metadata=None)


FEI_TEXT = """[User]
Date=12/01/2024
[Beam]
HV=5000
[Scan]
PixelWidth=7.7e-09
PixelHeight=7.7e-09
HorFieldsize=7.8848e-06
[EBeam]
HV=5000
"""

ZEISS_TEXT = """
0
DP_DETECTOR_CHANNEL
Signal A = InLens
AP_PIXEL_SIZE
Pixel Size = 3.5 nm
AP_WD
WD = 5.1 mm
"""


def _image(shape=(32, 48), dtype=np.uint16):
    return (np.arange(np.prod(shape)) % 1000).astype(dtype).reshape(shape)


# -- the unit vocabulary ----------------------------------------------------------------------
@pytest.mark.parametrize("spelling, unit", [
    ("micron", "um"), ("µm", "um"), ("μm", "um"), ("\\u00b5m", "um"), ("Micrometer", "um"),
    ("um", "um"), ("nanometre", "nm"), ("NM", "nm"), ("mm", "mm"), ("sec", "s"),
    ("ms", "ms"), ("µs", "us"), ("Å", "angstrom"), ("", None), (" ", None),
    ("pixel", None), (None, None), (b"micron\x00", "um"),
])
def test_unit_vocabulary(spelling, unit):
    assert normalize_unit(spelling) == unit


# -- TIFF: instrument calibrations beat resolution tags -----------------------------------------
def test_fei_pixel_size_not_screen_dpi(tmp_path):
    path = tmp_path / "fei.tif"
    tifffile.imwrite(path, _image(), resolution=(96, 96), resolutionunit="INCH",
                     extratags=[(34682, "s", 0, FEI_TEXT, True)], metadata=None)
    props = iio.improps(path)
    assert props.spacing == (7.7, 7.7) and props.units == ("nm", "nm")
    meta = iio.immeta(path, index=0)
    assert meta["spacing_source"] == "fei"
    assert meta["XResolution"] == (96, 1)  # the raw tag stays in the metadata


def test_zeiss_sem_pixel_size(tmp_path):
    path = tmp_path / "zeiss.tif"
    tifffile.imwrite(path, _image(dtype=np.uint8), resolution=(72, 72), resolutionunit="INCH",
                     extratags=[(34118, "s", 0, ZEISS_TEXT, True)], metadata=None)
    props = iio.improps(path)
    assert props.spacing == (3.5, 3.5) and props.units == ("nm", "nm")
    assert iio.immeta(path)["spacing_source"] == "zeiss_sem"


@pytest.mark.parametrize("dpi", [72, 96, 300])
def test_inch_resolution_is_not_a_pixel_size(tmp_path, dpi):
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, _image(), resolution=(dpi, dpi), resolutionunit="INCH",
                     metadata=None)
    props = iio.improps(path)
    assert props.spacing is None and props.units is None
    meta = iio.immeta(path, index=0)
    assert meta["spacing_source"] is None
    # the raw tags stay, with imageio's types (tifffile's enum for the unit)
    assert meta["XResolution"] == (dpi, 1) and meta["ResolutionUnit"] == 2


def test_unitless_resolution_is_not_a_pixel_size(tmp_path):
    path = tmp_path / "none.tif"
    tifffile.imwrite(path, _image(), resolution=(2.0, 2.0), resolutionunit="NONE",
                     metadata=None)
    assert iio.improps(path).spacing is None


def test_centimeter_resolution_is_a_pixel_size(tmp_path):
    path = tmp_path / "cm.tif"
    # 0.65 um pixels, as a camera driver writes them: pixels per centimeter
    tifffile.imwrite(path, _image(), resolution=(1 / 0.65e-4, 1 / 0.65e-4),
                     resolutionunit="CENTIMETER", metadata=None)
    props = iio.improps(path)
    assert props.spacing == pytest.approx((0.65e-4, 0.65e-4), rel=1e-6)
    assert props.units == ("cm", "cm")
    assert iio.immeta(path)["spacing_source"] == "resolution"


def test_metamorph_stk_calibration(tmp_path):
    path = tmp_path / "cells.stk"
    vol = _image((3, 16, 20))
    write_stk(path, vol, 0.645, 0.645, 2.5, "um")
    np.testing.assert_array_equal(iio.imread(path), vol)
    props = iio.improps(path)
    assert props.axes == "ZYX"
    assert props.spacing == (2.5, 0.645, 0.645)  # not 1/72 inch
    assert props.units == ("um", "um", "um")
    assert iio.immeta(path, index=0)["spacing_source"] == "stk"


def test_stk_in_microns_spelled_out(tmp_path):
    path = tmp_path / "cells.stk"
    write_stk(path, _image((2, 8, 8)), 0.1, 0.2, 1.0, "micron")
    props = iio.improps(path)
    assert props.spacing == (1.0, 0.2, 0.1) and props.units == ("um",) * 3


def test_zeiss_lsm_voxel_size_as_zen_shows_it(tmp_path):
    path = tmp_path / "scan.lsm"
    vol = _image((3, 32, 40))
    write_lsm(path, vol, (1.5e-6, 2.2e-7, 2.2e-7))  # meters in the file
    np.testing.assert_array_equal(iio.imread(path), vol)
    props = iio.improps(path)
    assert props.axes == "ZYX"
    assert props.spacing == (1.5, 0.22, 0.22)  # ZEN: 0.22 um x 0.22 um x 1.5 um
    assert props.units == ("um", "um", "um")
    assert iio.immeta(path)["spacing_source"] == "lsm"


def test_imagej_hyperstack_as_fiji_shows_it(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, _image((4, 3, 16, 20)), imagej=True,
                     resolution=(1 / 0.1625, 1 / 0.1625),
                     metadata={"axes": "ZCYX", "spacing": 0.5, "unit": "micron"})
    props = iio.improps(path)
    assert props.axes == "ZCYX"
    assert props.spacing == (0.5, None, 0.1625, 0.1625)
    assert props.units == ("um", None, "um", "um")
    assert iio.immeta(path)["spacing_source"] == "imagej"


def test_ome_physical_sizes_and_units(tmp_path):
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, _image((2, 5, 16, 20)), ome=True, metadata={
        "axes": "TZYX", "PhysicalSizeX": 65.0, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 65.0, "PhysicalSizeYUnit": "nm", "PhysicalSizeZ": 0.2,
        "PhysicalSizeZUnit": "µm", "TimeIncrement": 150.0, "TimeIncrementUnit": "ms"})
    props = iio.improps(path)
    assert props.axes == "TZYX"
    assert props.spacing == (150.0, 0.2, 65.0, 65.0)
    assert props.units == ("ms", "um", "nm", "nm")
    assert iio.immeta(path, index=0)["spacing_source"] == "ome"


def test_ome_beats_resolution_tags(tmp_path):
    path = tmp_path / "both.ome.tif"
    tifffile.imwrite(path, _image((16, 20)), ome=True, resolution=(1000, 1000),
                     resolutionunit="CENTIMETER", metadata={"PhysicalSizeX": 0.3,
                                                            "PhysicalSizeY": 0.3})
    props = iio.improps(path)
    assert props.spacing == (0.3, 0.3) and props.units == ("um", "um")


def test_written_spacing_reads_back_with_its_source(tmp_path):
    path = tmp_path / "w.tif"
    iio.imwrite(path, _image((3, 16, 20)), spacing=(2.0, 0.5, 0.5), axes="ZYX", units="um")
    props = iio.improps(path)
    assert props.spacing == (2.0, 0.5, 0.5) and props.units == ("um",) * 3
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
    assert iio.immeta(path)["spacing_source"] == "imagej"


# -- HDF5: one vocabulary, element_size_um is Z, Y, X --------------------------------------------
def test_hdf5_element_size_um_is_zyx(tmp_path):
    path = tmp_path / "fiji.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", data=_image((3, 8, 9), np.uint8))
        ds.attrs["element_size_um"] = np.array([1.5, 0.2, 0.1], np.float32)
    props = iio.improps(path)
    assert props.axes == "ZYX"
    assert props.spacing == (1.5, 0.2, 0.1)  # float32 attributes read as written
    assert props.units == ("um", "um", "um")
    assert iio.immeta(path)["spacing_source"] == "element_size_um"


def test_hdf5_units_use_the_vocabulary(tmp_path):
    path = tmp_path / "u.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", data=_image((2, 8, 9), np.uint8))
        ds.attrs["spacing"] = [np.nan, 0.5, 0.5]
        ds.attrs["units"] = np.array(["", "µm", "micron"], dtype=h5py.string_dtype())
    props = iio.improps(path)
    assert props.spacing == (None, 0.5, 0.5)
    assert props.units == (None, "um", "um")  # never "" and never "µm"


def test_hdf5_round_trip_keeps_none_units(tmp_path):
    path = tmp_path / "rt.h5"
    iio.imwrite(path, _image((2, 8, 9), np.uint8), spacing=(None, 0.5, 0.5),
                units=(None, "um", "um"))
    props = iio.improps(path)
    assert props.units == (None, "um", "um") and "" not in props.units


def test_hdf5_frame_stack_units_are_none_for_the_stack_axis(tmp_path):
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as f:
        for i in range(3):
            ds = f.create_dataset(f"frames/{i}", data=_image((8, 9), np.uint8))
            ds.attrs["element_size_um"] = [0.4, 0.3]
    props = iio.improps(path)
    assert props.shape == (3, 8, 9)
    assert props.spacing == (None, 0.4, 0.3) and props.units == (None, "um", "um")
