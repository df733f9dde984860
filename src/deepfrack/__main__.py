"""``python -m deepfrack`` and the ``deepfrack`` command.

The command's entry point lives here, in a module that imports nothing at first, so that a Ctrl-C while
the rest of deepfrack is still being imported (the first second of a run) prints one line instead of a
traceback; once the command runs, the CLI handles Ctrl-C itself."""

import sys


def main() -> None:
    """Import the command line and run it; Ctrl-C during the import is one line and exit code 130."""
    try:
        from deepfrack.cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("deepfrack: interrupted\n")
        sys.exit(130)
    cli()


if __name__ == "__main__":
    main()
