"""Command-line interface: a thin shell over the Python API.

Each sub-command lives in its own module here and only parses options, calls the API and writes
files. Every DeepfrackError becomes one line on stderr and exit code 2 (no traceback).
"""

from __future__ import annotations

import sys
import warnings

import click

from deepfrack import __version__
from deepfrack.errors import DeepfrackError


class _Group(click.Group):
    """Turns DeepfrackError into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except DeepfrackError as exc:
            click.echo(f"deepfrack: error: {exc}", err=True)
            ctx.exit(2)


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"deepfrack: warning: {message}\n"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="deepfrack")
def main() -> None:
    """deepfrack: which layers of a CNN to fuse into stacks, how to tile each stack's output, which
    weights to keep on chip - and how much energy that saves against running layer by layer.

    \b
    Typical flow:
      deepfrack benchmark ...   cost tables for every layer, tile shape and residency variant
      deepfrack optimize ...    the best fused schedule from those tables
      deepfrack evaluate ...    cost and check a given schedule
      deepfrack model ...       Timeloop-equivalent energy and cycles of one mapping
    """
    warnings.formatwarning = _format_warning


def _register() -> None:
    from deepfrack.cli import commands  # noqa: F401  (each module adds its command to `main`)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
