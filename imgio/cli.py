"""The ``imgio`` command line (``python -m imgio`` too)."""
from __future__ import annotations

import argparse
import sys

__all__ = ["main", "main_entry", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgio", description="Scientific image I/O.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="write a generated microscopy stack, read it back, report")
    demo.add_argument("directory", nargs="?", default=None,
                      help="keep the files here (default: a temporary folder)")
    demo.add_argument("--shape", default="64,512,512", help="Z,Y,X of the generated stack")
    return parser


def _cmd_demo(args) -> int:
    from .demo import run_demo
    shape = tuple(int(s) for s in args.shape.split(","))
    run_demo(args.directory, shape=shape)
    return 0


_COMMANDS = {"demo": _cmd_demo}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except Exception as exc:  # one readable line unless --debug
        if args.debug:
            raise
        print(f"imgio {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
