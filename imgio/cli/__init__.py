"""The ``imgio`` command line (``python -m imgio`` too).

Commands
--------
``imgio info FILE...``
    Format, shape, dtype, axes, spacing, number of images, compression and size.
``imgio convert SRC DST``
    Any readable format to any writable one, frame by frame.
``imgio preview FILE -o out.png``
    A picture of the data: projection and slice montage of a volume, or a thumbnail.
``imgio formats``
    The formats imgio knows and whether their backends are installed.
``imgio demo``
    Write a generated microscopy stack, read it back, report.

Every command prints one line on standard error and exits non-zero on failure;
``--debug`` shows the traceback instead.  :func:`info`, :func:`convert` and
:func:`preview` are the functions behind the commands, usable from Python.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


from ._common import _print_error
from ._convert import STREAM_ABOVE, _cmd_convert, convert  # noqa: F401 (STREAM_ABOVE: re-exported)
from ._info import _cmd_info, info
from ._preview import _cmd_preview, preview

__all__ = ["main", "main_entry", "build_parser", "info", "convert", "preview",
           "formats_table"]


# -- formats -------------------------------------------------------------------------------
def formats_table() -> list[dict]:
    """One dict per registered plugin: name, extensions, modes, installed, description."""
    from ..core import registry
    rows = []
    for spec in registry.plugins():
        installed = spec.backend_installed()
        rows.append({
            "name": spec.name, "extensions": list(spec.extensions), "modes": spec.modes,
            "reads_folders": spec.folders, "backend": spec.backend, "installed": installed,
            "install": None if installed else (f"pip install imgio[{spec.extra}]" if spec.extra
                                               else f"pip install {spec.backend}"),
            "description": spec.description,
        })
    return rows


def _cmd_formats(args) -> int:
    rows = formats_table()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("plugin", "extensions", "modes", "installed", "description")]
    for r in rows:
        exts = " ".join(r["extensions"]) + (" (folders)" if r["reads_folders"] else "")
        inst = "yes" if r["installed"] else f"no: {r['install']}"
        table.append((r["name"], exts, r["modes"], inst, r["description"]))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for k, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
        if k == 0:
            print("  ".join("-" * wd for wd in widths) + "  " + "-" * len(row[4]))
    print("\nmodes: i image, I several images, v volume, V several volumes")
    return 0


# -- demo ----------------------------------------------------------------------------------
def _cmd_demo(args) -> int:
    from ..demo import run_demo
    try:
        shape = tuple(int(s) for s in args.shape.split(","))
    except ValueError:
        raise ValueError(f"--shape must be integers separated by commas, got {args.shape!r}") \
            from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--shape must be three positive integers Z,Y,X, got {args.shape!r}")
    run_demo(args.directory, shape=shape)
    return 0


# -- the parser and the entry point ------------------------------------------------------
def _selection_arguments(p, convert: bool = False) -> None:
    p.add_argument("--dataset", default=None, metavar="PATH",
                   help="HDF5 dataset to read (HDF5 SRC) or write (HDF5 DST)" if convert
                   else "HDF5 dataset to read (imgio info lists them)")
    p.add_argument("--series", type=int, default=None, metavar="N",
                   help="TIFF series to read (0 is the first)")
    p.add_argument("--level", type=int, default=None, metavar="N",
                   help="pyramid level to read (0 is full resolution)")


def build_parser() -> argparse.ArgumentParser:
    """The ``imgio`` argument parser."""
    from .. import __version__
    parser = argparse.ArgumentParser(prog="imgio", description="Scientific image I/O.")
    parser.add_argument("--version", action="version", version=f"imgio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="shape, dtype, axes, spacing, compression of files",
                       description="Report what a file (or a folder or glob of slices, "
                       "read as one stack) holds, without reading its pixels.")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="files, folders or quoted glob patterns ('slices/*.tif')")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.add_argument("--plugin", default=None, help="read with this plugin")
    _selection_arguments(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("convert", help="convert between formats, frame by frame",
                       description="Copy SRC into DST (format from DST's extension), one "
                       "frame at a time, keeping spacing, axes and units.")
    p.add_argument("src", metavar="SRC", help="file, folder or quoted glob to read")
    p.add_argument("dst", metavar="DST", help="file to write")
    p.add_argument("--compression", default=None,
                   help="compression of DST (e.g. zlib, zstd for TIFF; gzip, lzf for HDF5)")
    p.add_argument("--plugin", default=None, help="read SRC with this plugin")
    _selection_arguments(p, convert=True)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="convert to OME-Zarr on this dask.distributed scheduler "
                   "(e.g. tcp://10.0.0.1:8786); workers write disjoint shard rows")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("preview", help="a PNG or JPEG picture of an image or a volume",
                       description="Write a PNG or JPEG (by -o's extension): for a volume "
                       "its maximum-intensity "
                       "projection and a montage of evenly spaced slices; for an image a "
                       "thumbnail.  Contrast is stretched to the 0.5..99.5 percentiles.")
    p.add_argument("file", metavar="FILE", help="file, folder or quoted glob to show")
    p.add_argument("-o", "--output", default=None,
                   help=".png, .jpg or .jpeg to write (default: <name>_preview.png here)")
    p.add_argument("--slices", type=int, default=8, help="slices in the montage (8)")
    p.add_argument("--size", type=int, default=1024, help="longest side in pixels (1024)")
    p.add_argument("--plugin", default=None, help="read FILE with this plugin")
    _selection_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_preview)

    p = sub.add_parser("formats", help="formats, extensions and installed backends")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser("demo", help="write a generated microscopy stack, read it back, report")
    p.add_argument("directory", nargs="?", default=None,
                   help="keep the files here (default: a temporary folder)")
    p.add_argument("--shape", default="64,512,512", help="Z,Y,X of the generated stack")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except BrokenPipeError:  # `imgio info ... | head`: the reader left, stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"imgio {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one readable line unless --debug
        if args.debug:
            raise
        _print_error(args.command, exc)
        return 1


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())

