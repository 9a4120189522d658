"""A multi-file OME-TIFF dataset reads through imgio as it does through tifffile.

One OME ``Image`` (SizeZ=6) is split over two files of three Z planes each;
the OME-XML lives only in the first file's first ImageDescription and points
at both files by ``TiffData``/``UUID FileName``.  tifffile assembles the
series from both files (``TiffFile(..., _multifile=True)``, the default).
"""
import logging
import uuid

import numpy as np
import pytest
import tifffile

import imgio.v3 as iio

SHAPE = (6, 16, 20)
PHYS = {"X": 0.25, "Y": 0.5, "Z": 2.0}


@pytest.fixture(params=[True, False], ids=["contiguous", "separate"])
def ome_multifile(tmp_path, request):
    data = np.arange(np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE) * 7
    names = ("a.ome.tif", "b.ome.tif")
    uuids = [f"urn:uuid:{uuid.uuid4()}" for _ in names]
    tiffdata = "".join(
        f'<TiffData IFD="0" PlaneCount="3" FirstZ="{first}" FirstC="0" FirstT="0">'
        f'<UUID FileName="{name}">{uid}</UUID></TiffData>'
        for name, uid, first in zip(names, uuids, (0, 3)))
    planes = "".join(f'<Plane TheZ="{z}" TheC="0" TheT="0"/>' for z in range(6))
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.openmicroscopy.org/Schemas/OME/2016-06 '
        'http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd" '
        f'UUID="{uuids[0]}">'
        '<Image ID="Image:0" Name="stack"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" '
        'Type="uint16" SizeX="20" SizeY="16" SizeZ="6" SizeC="1" SizeT="1" '
        f'PhysicalSizeX="{PHYS["X"]}" PhysicalSizeXUnit="µm" '
        f'PhysicalSizeY="{PHYS["Y"]}" PhysicalSizeYUnit="µm" '
        f'PhysicalSizeZ="{PHYS["Z"]}" PhysicalSizeZUnit="µm">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        f'{tiffdata}{planes}</Pixels></Image></OME>')
    desc = xml.encode("utf-8")
    for name, part in zip(names, (data[:3], data[3:])):
        # ome=False: a ".ome.tif" name would make tifffile write its own OME-XML;
        # the first page of the first file gets the dataset's OME-XML instead
        first = desc if name == names[0] else None
        with tifffile.TiffWriter(tmp_path / name, ome=False) as tw:
            if request.param:  # the three planes' data back to back in the file
                tw.write(part, metadata=None, photometric="minisblack", description=first)
            else:  # one separate write (and page) per plane
                for i, plane in enumerate(part):
                    tw.write(plane, metadata=None, photometric="minisblack",
                             contiguous=False, description=first if i == 0 else None)
    return tmp_path / names[0], data


def _no_warnings(caplog):
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not bad, [r.getMessage() for r in bad]


def test_tifffile_assembles_both_files(ome_multifile, caplog):
    path, data = ome_multifile
    caplog.set_level(logging.DEBUG)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        assert len(tif.pages) == 3  # the other three planes are in b.ome.tif
        assert len(tif.series) == 1
        assert tif.series[0].shape == SHAPE and tif.series[0].axes == "ZYX"
    np.testing.assert_array_equal(tifffile.imread(path), data)
    _no_warnings(caplog)


def test_imgio_reads_multifile_like_tifffile(ome_multifile, caplog):
    path, data = ome_multifile
    caplog.set_level(logging.DEBUG)
    expected = tifffile.imread(path)
    np.testing.assert_array_equal(expected, data)
    image = iio.imread(path)
    assert image.shape == SHAPE and image.dtype == np.uint16
    np.testing.assert_array_equal(image, expected)
    _no_warnings(caplog)


def test_imgio_properties_and_metadata(ome_multifile, caplog):
    path, _ = ome_multifile
    caplog.set_level(logging.DEBUG)
    props = iio.improps(path)
    assert props.shape == SHAPE and props.dtype == np.uint16
    assert props.axes == "ZYX"
    assert props.spacing == pytest.approx((PHYS["Z"], PHYS["Y"], PHYS["X"]))
    assert props.units == ("um", "um", "um")
    meta = iio.immeta(path)
    assert meta["is_ome"] is True
    assert meta["n_series"] == 1
    _no_warnings(caplog)
