"""What an HDF5 ndimage is made of: datasets, stacks of datasets, BigDataViewer and
Imaris layouts, and the physical metadata conventions of their attributes.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator

import h5py
import numpy as np

from ...errors import FormatError, selection_error
from ..physical import normalize_unit
from .chunks import _FastChunks

#: bytes per batch on the read_direct path
_BATCH_BYTES = 16 << 20


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _to_python(value: Any) -> Any:
    """An attribute value with bytes decoded and NumPy scalars made Python."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return _to_python(value.item())
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            if value.dtype.itemsize == 1 and value.ndim == 1:  # Imaris byte-char arrays
                return b"".join(value.tolist()).decode("utf-8", "replace")
            return [_to_python(v) for v in value.ravel().tolist()]
        if value.dtype.kind in "OU":
            return [_to_python(v) for v in value.ravel().tolist()]
        if value.ndim == 0:
            return _to_python(value[()])
        return value
    if isinstance(value, h5py.Empty):
        return None
    if isinstance(value, (h5py.Reference, h5py.RegionReference)):
        return repr(value)
    return value


def _attrs(obj) -> dict:
    out = {}
    for key in obj.attrs:
        try:
            out[key] = _to_python(obj.attrs[key])
        except Exception as exc:  # an attribute h5py cannot decode must not break reading
            out[key] = f"<unreadable attribute: {exc}>"
    return out


def _text(value: Any) -> str | None:
    value = _to_python(value)
    if isinstance(value, list):
        value = "".join(str(v) for v in value)
    return value if isinstance(value, str) else None


def _image_like(ds) -> bool:
    return isinstance(ds, h5py.Dataset) and ds.ndim >= 2 and ds.dtype.kind in "biufc"


# -- what an ndimage is made of -------------------------------------------------------
class _Node:
    """One ndimage: a dataset (maybe cropped) or a stack of equally shaped nodes."""

    shape: tuple
    dtype: np.dtype
    name: str
    spacing: tuple | None = None
    axes: str | None = None
    units: tuple | None = None
    #: where the spacing came from (see imgio.plugins.physical.SOURCES)
    source: str | None = None
    attrs: dict

    def read_all(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        self.read_into(out)
        return out

    def read_into(self, out: np.ndarray) -> None:
        self.read_frames(0, self.shape[0], out)

    def read_frames(self, a: int, b: int, out: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def iter_frames(self) -> Iterator[np.ndarray]:  # pragma: no cover
        raise NotImplementedError


class _DatasetNode(_Node):
    def __init__(self, plugin: Any, ds, crop: tuple | None = None,
                 view: np.dtype | None = None):
        plugin._check_local(ds)
        self.plugin = plugin
        self.ds = ds
        self.name = ds.name
        self.crop = crop  # stop per axis (Imaris padding), or None
        self.shape = tuple(int(s) for s in (crop if crop is not None else ds.shape))
        self.view = view  # reinterpret the stored dtype (BigDataViewer int16 -> uint16)
        self.dtype = np.dtype(view) if view is not None else ds.dtype
        self.attrs = _attrs(ds)
        self._fast: Any = False  # not yet decided

    def _sel(self, a: int, b: int) -> tuple:
        sel = (slice(a, b),)
        if self.crop is not None:
            sel += tuple(slice(0, s) for s in self.crop[1:])
        return sel

    def fast(self) -> "_FastChunks | None":
        if self._fast is False:
            self._fast = None
            if self.crop is None or tuple(self.crop) == tuple(self.ds.shape):
                fd, memory = self.plugin._raw_sources()
                self._fast = _FastChunks.build(self.ds, fd, memory,
                                               self.plugin._request.filename)
        return self._fast

    def _out(self, out: np.ndarray) -> np.ndarray:
        return out.view(self.ds.dtype) if self.view is not None else out

    def read_frames(self, a: int, b: int, out: np.ndarray) -> None:
        out = self._out(out)
        if b <= a:
            return
        fast = self.fast() if out.flags.c_contiguous else None
        if fast is not None:
            fast.read_frames(a, b, out, self.plugin._pool())
        elif self.ds.ndim == 0:
            out[...] = self.ds[()]
        else:
            self.ds.read_direct(out, self._sel(a, b))

    def read_into(self, out: np.ndarray) -> None:
        if self.ds.ndim == 0:
            self._out(out)[...] = self.ds[()]
        else:
            self.read_frames(0, self.shape[0], out)

    def iter_frames(self) -> Iterator[np.ndarray]:
        fast = self.fast()
        if fast is not None:
            for frame in fast.iter_frames(self.plugin._pool()):
                yield frame.view(self.dtype) if self.view is not None else frame
            return
        n = self.shape[0]
        frame_bytes = max(1, int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize)
        step = max(1, _BATCH_BYTES // frame_bytes)
        chunk0 = int(self.ds.chunks[0]) if self.ds.chunks else 1
        if step >= chunk0:  # whole chunks per batch: HDF5 decodes each chunk once
            step -= step % chunk0
        else:
            step = chunk0
        for a in range(0, n, step):
            b = min(n, a + step)
            batch = np.empty((b - a,) + self.shape[1:], self.dtype)
            self.read_frames(a, b, batch)
            yield from batch


class _StackNode(_Node):
    def __init__(self, name: str, members: list, axis: str = "I"):
        first = members[0]
        for m in members[1:]:
            if m.shape != first.shape or m.dtype != first.dtype:
                raise FormatError(
                    f"{name}: the frames differ: {m.name} is {m.shape} {m.dtype}, "
                    f"{first.name} is {first.shape} {first.dtype}")
        self.name = name
        self.members = members
        self.shape = (len(members),) + tuple(first.shape)
        self.dtype = first.dtype
        self.attrs = dict(first.attrs)
        if first.axes is not None:
            self.axes = axis + first.axes
        if first.spacing is not None:
            self.spacing = (None,) + tuple(first.spacing)
            self.units = (None,) + tuple(first.units or (None,) * len(first.spacing))
            self.source = first.source

    def read_frames(self, a: int, b: int, out: np.ndarray) -> None:
        for i in range(a, b):
            self.members[i].read_into(out[i - a])

    def iter_frames(self) -> Iterator[np.ndarray]:
        for m in self.members:
            yield m.read_all()


def _floats(value) -> list[float]:
    """An attribute's numbers as floats; float32 values rounded to what was written."""
    arr = np.atleast_1d(np.asarray(value))
    if arr.dtype == np.float32:
        return [float(f"{v:.7g}") for v in arr.tolist()]
    return [float(v) for v in arr.astype(np.float64).tolist()]


def _physical(ds) -> tuple[tuple | None, str | None, tuple | None, str | None]:
    """(spacing, axes, units, source) of a dataset from the common attribute conventions.

    ``spacing`` + ``units`` attributes (imgio's own, and h5py users') win; then
    ``element_size_um`` (Fiji, ilastik, CellProfiler), which counts from the
    last axis: 3 values are Z, Y, X.  Units are in the vocabulary of
    :mod:`imgio.plugins.physical` (``None`` where unknown).
    """
    ndim = ds.ndim
    attrs = ds.attrs
    axes = None
    if "axes" in attrs:
        text = _to_python(attrs["axes"])
        if isinstance(text, list):
            text = "".join(str(t)[:1] for t in text)
        if isinstance(text, str) and len(text) == ndim:
            axes = text.upper()
    if axes is None:
        try:
            labels = [ds.dims[i].label for i in range(ndim)]
        except Exception:
            labels = []
        if labels and all(labels):
            axes = "".join(label[:1] for label in labels).upper()
    if axes is None and "axistags" in attrs:  # ilastik
        try:
            tags = json.loads(_text(attrs["axistags"]) or "")
            keys = "".join(a["key"][:1] for a in tags["axes"]).upper()
            if len(keys) == ndim:
                axes = keys
        except (ValueError, KeyError, TypeError):
            pass

    spacing = units = source = None
    unit_attr = None
    for key in ("units", "unit"):
        if key in attrs:
            u = _to_python(attrs[key])
            unit_attr = tuple(str(x) for x in u) if isinstance(u, list) else str(u)
            break
    if "spacing" in attrs:
        try:
            sp = _floats(attrs["spacing"])
        except (TypeError, ValueError):
            sp = []
        if len(sp) == ndim:
            spacing = tuple(None if not np.isfinite(s) else s for s in sp)
            source = "spacing_attribute"
    if spacing is None and "element_size_um" in attrs:
        try:
            esu = _floats(attrs["element_size_um"])
        except (TypeError, ValueError):
            esu = []
        if 0 < len(esu) <= min(ndim, 3):
            sp_list: list = [None] * ndim
            letters = "ZYX"[-len(esu):]
            if axes is not None and all(c in axes for c in letters):
                for letter, value in zip(letters, esu):
                    sp_list[axes.index(letter)] = value
            else:
                sp_list[ndim - len(esu):] = esu
                if axes is None and len(esu) == ndim:
                    axes = letters  # element_size_um is Z, Y, X
            spacing = tuple(sp_list)
            source = "element_size_um"
            if unit_attr is None:
                unit_attr = tuple("um" if s is not None else None for s in spacing)
    if spacing is not None:
        if isinstance(unit_attr, tuple) and len(unit_attr) == ndim:
            units = tuple(normalize_unit(u) for u in unit_attr)
        elif isinstance(unit_attr, str):
            units = tuple(normalize_unit(unit_attr) if s is not None else None
                          for s in spacing)
        else:
            units = (None,) * ndim
    return spacing, axes, units, source



# -- BigDataViewer ---------------------------------------------------------------
def is_bdv(f) -> bool:
    """Whether the open file ``f`` is a BigDataViewer HDF5 file."""
    return isinstance(f.get("s00/resolutions"), h5py.Dataset) and any(
        re.fullmatch(r"t\d{5}", k) for k in f.keys())

def _bdv_voxel(path, setup: int) -> tuple[tuple | None, str | None]:
    """(x, y, z) voxel size and unit of the setup from the BDV xml beside the file."""
    if not path:
        return None, None
    xml = os.path.splitext(path)[0] + ".xml"
    if not os.path.isfile(xml):
        return None, None
    import xml.etree.ElementTree as ET
    try:
        root = ET.parse(xml).getroot()
        for vs in root.iter("ViewSetup"):
            if int(vs.findtext("id", "-1")) == setup:
                size = vs.find("voxelSize")
                if size is None:
                    return None, None
                values = tuple(float(v) for v in size.findtext("size", "").split())
                return (values if len(values) == 3 else None), size.findtext("unit")
    except (ET.ParseError, ValueError, OSError):
        return None, None
    return None, None

def bdv_node(plugin, level: int, setup: int) -> _Node:
    """The ndimage of BigDataViewer ``setup`` at ``level`` (a stack over time points)."""
    f = plugin._h5
    sname = f"s{setup:02d}"
    if f"{sname}/resolutions" not in f:
        setups = sorted(k for k in f.keys() if re.fullmatch(r"s\d{2}", k))
        raise selection_error(f"{plugin._request.filename} (BigDataViewer setups "
                              f"{', '.join(setups)})", "setup", setup, len(setups))
    resolutions = np.asarray(f[f"{sname}/resolutions"], np.float64).reshape(-1, 3)
    if not 0 <= level < len(resolutions):
        raise selection_error(plugin._request.filename, "level", level, len(resolutions))
    times = sorted((k for k in f.keys() if re.fullmatch(r"t\d{5}", k)
                    and f"{k}/{sname}/{level}/cells" in f), key=_natural_key)
    if not times:
        raise FormatError(f"{plugin._request.filename}: no BigDataViewer cells for setup "
                          f"{setup} level {level}")
    voxel, unit = _bdv_voxel(plugin._request.path, setup)
    nodes = []
    for t in times:
        ds = f[f"{t}/{sname}/{level}/cells"]
        # BigDataViewer stores 16-bit data as int16 and reads it as unsigned
        node = _DatasetNode(plugin, ds, view=np.dtype(ds.dtype.byteorder + "u2")
                            if ds.dtype.kind == "i" and ds.dtype.itemsize == 2 else None)
        node.axes = "ZYX"[-ds.ndim:]
        if voxel is not None and ds.ndim == 3:
            zyx = np.asarray(voxel[::-1]) * resolutions[level][::-1]
            node.spacing = tuple(float(f"{v:.10g}") for v in zyx)
            node.units = (normalize_unit(unit),) * 3
            node.source = "bigdataviewer"
        nodes.append(node)
    if len(nodes) == 1:
        return nodes[0]
    return _StackNode(f"{sname} level {level}", nodes, axis="T")

# -- Imaris ------------------------------------------------------------------------
def is_imaris(f) -> bool:
    """Whether the open file ``f`` is an Imaris ``.ims`` file."""
    return isinstance(f.get("DataSet/ResolutionLevel 0"), h5py.Group)

def imaris_node(plugin, level: int) -> _Node:
    """The ndimage of Imaris resolution ``level`` (stacks over time points and channels)."""
    f = plugin._h5
    lname = f"DataSet/ResolutionLevel {level}"
    if lname not in f:
        n = sum(1 for k in f["DataSet"].keys() if k.startswith("ResolutionLevel "))
        raise selection_error(plugin._request.filename, "level", level, n)
    lgroup = f[lname]
    times = sorted((k for k in lgroup.keys() if k.startswith("TimePoint ")), key=_natural_key)
    if not times:
        raise FormatError(f"{plugin._request.filename}: Imaris level {level} has no time points")
    chans = sorted((k for k in lgroup[times[0]].keys() if k.startswith("Channel ")),
                   key=_natural_key)
    info = f.get("DataSetInfo/Image")
    iattrs = info.attrs if info is not None else {}

    def number(attrs, key):
        text = _text(attrs[key]) if key in attrs else None
        try:
            return float(text) if text is not None else None
        except ValueError:
            return None

    full = [number(iattrs, k) for k in ("Z", "Y", "X")]
    ext = [(number(iattrs, f"ExtMin{i}"), number(iattrs, f"ExtMax{i}")) for i in (2, 1, 0)]
    unit = _text(iattrs["Unit"]) if "Unit" in iattrs else "um"

    def size_of(chan_group, ds) -> tuple:
        sizes = [number(chan_group.attrs, f"ImageSize{a}") for a in "ZYX"]
        if None in sizes:
            if level == 0 and None not in full:
                sizes = full
            elif None not in full:  # lower levels: scale the real size like the data
                base = f[f"DataSet/ResolutionLevel 0/{times[0]}/{chans[0]}/Data"].shape
                sizes = [-(-int(fs) * s // b) for fs, s, b in zip(full, ds.shape, base)]
            else:
                sizes = ds.shape
        return tuple(min(int(s), d) for s, d in zip(sizes, ds.shape))

    spacing = None
    def frames(t):
        nodes = []
        for c in chans:
            cg = lgroup[f"{t}/{c}"]
            ds = cg["Data"]
            node = _DatasetNode(plugin, ds, crop=size_of(cg, ds))
            node.attrs = {**_attrs(cg), **node.attrs}
            nodes.append(node)
        return nodes

    per_t = [frames(t) for t in times]
    shape = per_t[0][0].shape
    if all(None not in e for e in ext) and len(shape) == 3:
        spacing = tuple(float(f"{(hi - lo) / s:.10g}") for (lo, hi), s in zip(ext, shape))
    for nodes in per_t:
        for node in nodes:
            node.axes = "ZYX"
            if spacing is not None:
                node.spacing, node.units = spacing, (normalize_unit(unit),) * 3
                node.source = "imaris"
    tnodes = [n[0] if len(n) == 1 else _StackNode(f"{lname}/{t}", n, axis="C")
              for t, n in zip(times, per_t)]
    if len(tnodes) == 1:
        return tnodes[0]
    return _StackNode(lname, tnodes, axis="T")
