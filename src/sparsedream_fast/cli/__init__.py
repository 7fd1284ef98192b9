"""The ``sparsedream`` command: ``demo``, ``bench``, ``train``, ``sweep``, ``tnn``, ``show``, ``backends``.

Each subcommand lives in its own module of this package with an ``add_arguments(parser)``
and a ``run(args)`` function; this file only wires them together. A user's mistake (a bad
option, a missing file, a parameter an estimator refuses) prints one line naming it and
exits with status 2; Ctrl-C exits with 130.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ._common import TrainingDiverged, UsageError

__all__ = ["main"]

#: subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("sparsedream_fast.cli.demo", "train seed 001's map on tapestry frames; write its weight tapestry, "
                                          "animation, metrics and checkpoint"),
    "bench": ("sparsedream_fast.cli.bench", "benchmark the backends against the numpy reference and the notebook loop"),
    "train": ("sparsedream_fast.cli.train", "train any model on a loader's data or a file, config from flags or TOML"),
    "sweep": ("sparsedream_fast.cli.sweep", "a parameter sweep from a TOML file on a Dask cluster (local processes "
                                            "by default): table, picture, resumable store"),
    "tnn": ("sparsedream_fast.cli.tnn", "train a TNN network (seed 004) on sequential MNIST by STDP and read it out"),
    "show": ("sparsedream_fast.cli.show", "pictures and metrics of a saved checkpoint"),
    "backends": ("sparsedream_fast.cli.backends", "list the backends and why any is unavailable here"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported on one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _version() -> str:
    from .. import __version__
    return __version__


def main(argv=None) -> int:
    """Entry point of the ``sparsedream`` command; returns the exit status."""
    parser = _Parser(
        prog="sparsedream",
        description="Fast competitive Hebbian learning (SparseDream online k-WTA and friends).",
        epilog="Run 'sparsedream COMMAND --help' for the options and examples of each command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    mods = {}
    for name, (modname, helptext) in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # a subcommand whose optional deps are missing stays listed
            p = sub.add_parser(name, help=f"{helptext} (unavailable: {exc})")
            mods[name] = None
            continue
        doc = (mod.run.__doc__ or helptext).strip()
        p = sub.add_parser(name, help=helptext, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        mods[name] = mod
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if mods[args.command] is None:
        parser.error(f"'{args.command}' is unavailable here")
    try:
        return int(mods[args.command].run(args) or 0)
    except UsageError as exc:
        print(f"sparsedream {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"sparsedream {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sparsedream {args.command}: interrupted", file=sys.stderr)
        return 130

