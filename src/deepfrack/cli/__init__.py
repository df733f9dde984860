"""Command-line interface: a thin shell over the Python API.

Each sub-command lives in its own module here and only parses options, calls the API and writes
files. Every DeepfrackError becomes one line on stderr and exit code 2 (no traceback).
"""

from __future__ import annotations

import os
import re
import sys
import warnings

import click

from deepfrack import __version__
from deepfrack.api import DeepfrackNote
from deepfrack.errors import DeepfrackError, InputError, message_line


class _Group(click.Group):
    """Runs a command with warnings shown as one line each, and turns a usage error, a DeepfrackError (bad
    input) or an OSError (a file that cannot be read or written) into a one-line message and exit code 2."""

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        """Parse the group's own options; a usage error there (e.g. an unknown option) is one line too."""
        had_args = bool(args)  # (parsing consumes the list)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if not had_args:  # plain `deepfrack`: show the help, as click does
                raise
            click.echo(f"deepfrack: error: {exc.format_message()} (see 'deepfrack --help')", err=True)
            sys.exit(2)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except click.UsageError as exc:  # a sub-command's options: one line too, with where to look
                if exc.ctx is not None and exc.ctx is not ctx:
                    path = exc.ctx.command_path
                elif ctx.invoked_subcommand:  # raised while parsing the sub-command's options
                    path = f"{ctx.command_path} {ctx.invoked_subcommand}"
                else:
                    path = ctx.command_path
                click.echo(f"deepfrack: error: {exc.format_message()} (see '{path} --help')", err=True)
                ctx.exit(2)
            except DeepfrackError as exc:
                click.echo(f"deepfrack: error: {message_line(_as_option(exc))}", err=True)
                ctx.exit(2)
            except KeyboardInterrupt:  # Ctrl-C anywhere a command does not handle it itself: one line
                click.echo("deepfrack: interrupted", err=True)
                ctx.exit(130)
            except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: end quietly
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the exit flush does not fail again
                ctx.exit(1)
            except OSError as exc:
                where = f"{exc.filename}: " if exc.filename else ""
                click.echo(f"deepfrack: error: {message_line(f'{where}{exc.strerror or exc}')}", err=True)
                ctx.exit(2)


def _as_option(exc: DeepfrackError) -> str:
    """The error's line, with a bad argument of the Python API named as the command-line option that
    gave it (the API's ``receptive_field`` is ``--receptive-field``)."""
    if isinstance(exc, InputError) and exc.path is None and exc.field and re.fullmatch(r"[a-z_]+", exc.field):
        return str(InputError(None, "--" + exc.field.replace("_", "-"), exc.message))
    return str(exc)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    kind = "note" if issubclass(category, DeepfrackNote) else "warning"
    click.echo(f"deepfrack: {kind}: {message_line(str(message), 400)}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="deepfrack")
def main() -> None:
    """deepfrack: which layers of a CNN to fuse into stacks, how to tile each stack's output, which
    weights to keep on chip - and how much energy that saves against running layer by layer.

    \b
    Typical flow:
      deepfrack run ...         all of it: benchmark what the search needs, then search
      deepfrack benchmark ...   cost tables for every layer, tile shape and residency variant
      deepfrack optimize ...    the best fused schedule from those tables
      deepfrack evaluate ...    cost and check a given schedule
      deepfrack stats ...       where the energy goes: CSVs, pictures, an HTML report
      deepfrack sweep ...       run over a grid of architecture variations (buffer sizes, DRAM, PEs)
      deepfrack model ...       Timeloop-equivalent energy and cycles of one mapping
      deepfrack zoo / workload show / arch list   networks and accelerators known by name
    """


def _register() -> None:
    from deepfrack.cli import commands  # noqa: F401  (each module adds its command to `main`)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
