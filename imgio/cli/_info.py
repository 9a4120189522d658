"""``imgio info``: what a file holds, without reading its pixels."""
from __future__ import annotations

import json
import os
from typing import Any


from ..errors import FormatError
from ._common import (_compression, _human_size, _n_images, _print_error, _props,
                      _resource_size, _selection)


# -- info ---------------------------------------------------------------------------------
def _dataset_listing(reader, sel: dict) -> list | None:
    """``[{path, shape, dtype, chunks, compression}]`` when the file holds several datasets."""
    if "dataset" in sel:
        return None
    try:
        meta = reader.metadata(**{k: v for k, v in sel.items() if k != "index"})
    except Exception:
        return None
    details = meta.get("dataset_details") if isinstance(meta, dict) else None
    if not isinstance(details, dict) or meta.get("dataset") is not None:
        return None
    return [dict(path=path, **d) for path, d in details.items()]


def info(uri: Any, *, plugin: str | None = None, dataset: str | None = None,
         series: int | None = None, level: int | None = None) -> dict:
    """What ``imgio info`` reports about one file, folder or glob, as a dict.

    Parameters
    ----------
    uri : str or pathlib.Path
        A file, or a folder or glob read as one stack of slices.
    plugin : str, optional
        Read with this plugin.
    dataset, series, level : optional
        Which ndimage to describe (the plugins' selection keywords).

    Returns
    -------
    dict
        ``file, format, shape, dtype, axes, spacing, units, n_images,
        compression, file_size`` (JSON-serialisable; unknown values are ``None``).
        For a file with several datasets and no ``dataset`` chosen: ``file,
        format, file_size`` and ``datasets``, a list of ``{path, shape, dtype,
        chunks, compression}``.
    """
    from ..core.imopen import imopen

    sel = _selection(dataset, series, level)
    with imopen(uri, "r", plugin=plugin) as reader:
        try:
            props = _props(reader, uri, sel)
        except FormatError:
            listing = _dataset_listing(reader, sel)
            if not listing:
                raise
            return {"file": os.fspath(uri) if not isinstance(uri, str) else uri,
                    "format": reader.name, "datasets": listing,
                    "file_size": _resource_size(reader.request)}
        report = {
            "file": os.fspath(uri) if not isinstance(uri, str) else uri,
            "format": reader.name,
            "shape": list(props.shape),
            "dtype": str(props.dtype),
            "axes": props.axes,
            "spacing": None if props.spacing is None else [
                None if s is None else float(s) for s in props.spacing],
            "units": None if props.units is None else list(props.units),
            "n_images": _n_images(reader, props, sel),
            "compression": _compression(reader, sel),
            "file_size": _resource_size(reader.request),
        }
    return report


def _format_spacing(report: dict) -> str:
    spacing, units, axes = report["spacing"], report["units"], report["axes"]
    if spacing is None or all(s is None for s in spacing):
        return "unknown"
    parts = []
    for i, s in enumerate(spacing):
        name = axes[i] if axes and i < len(axes) else f"axis{i}"
        unit = units[i] if units and i < len(units) and units[i] else ""
        parts.append(f"{name} ?" if s is None else f"{name} {s:g}{' ' + unit if unit else ''}")
    return ", ".join(parts)


def _print_info(report: dict, out=print) -> None:
    out(report["file"])
    if "datasets" in report:
        out(f"  {'format':<12} {report['format']}")
        out(f"  {'file size':<12} {_human_size(report['file_size'])}")
        out(f"  {len(report['datasets'])} datasets (choose one with --dataset PATH):")
        table = [("path", "shape", "dtype", "chunks", "compression")]
        for d in report["datasets"]:
            table.append((d["path"], "(" + ", ".join(str(s) for s in d["shape"]) + ")",
                          d["dtype"], "none" if not d.get("chunks") else
                          "(" + ", ".join(str(c) for c in d["chunks"]) + ")",
                          d.get("compression") or "none"))
        widths = [max(len(r[i]) for r in table) for i in range(5)]
        for row in table:
            out("    " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        return
    rows = [
        ("format", report["format"]),
        ("shape", "(" + ", ".join(str(s) for s in report["shape"]) + ")"),
        ("dtype", report["dtype"]),
        ("axes", report["axes"] or "unknown"),
        ("spacing", _format_spacing(report)),
        ("images", "unknown" if report["n_images"] is None else str(report["n_images"])),
        ("compression", report["compression"] or "unknown"),
        ("file size", _human_size(report["file_size"])),
    ]
    for key, value in rows:
        out(f"  {key:<12} {value}")


def _cmd_info(args) -> int:
    reports, failed = [], 0
    for uri in args.files:
        try:
            reports.append(info(uri, plugin=args.plugin, dataset=args.dataset,
                                series=args.series, level=args.level))
        except BrokenPipeError:
            raise
        except Exception as exc:
            if args.debug:
                raise
            failed += 1
            _print_error(f"info {uri}", exc)
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for i, report in enumerate(reports):
            if i:
                print()
            _print_info(report)
    return 1 if failed else 0


