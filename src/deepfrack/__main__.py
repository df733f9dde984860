"""``python -m deepfrack`` and the ``deepfrack`` command.

The command's entry point lives in this module, which imports next to nothing, so that a Ctrl-C in the
first second of a run -- while the rest of deepfrack is still being imported -- prints one line instead
of a traceback: until the command line is imported, SIGINT ends the process with that line; then the
CLI handles Ctrl-C itself (one line too, exit code 130)."""

import os
import signal
import sys


def _interrupted_early(signum: int, frame: object) -> None:
    os.write(2, b"deepfrack: interrupted\n")
    os._exit(130)


# Only where SIGINT has Python's default handler: not where it is ignored (a worker process, which
# imports this module as the parent's main module) nor where a host program handles it.
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_early)


def main() -> None:
    """Import the command line and run it; Ctrl-C before it runs is one line and exit code 130."""
    try:
        from deepfrack.cli import main as cli

        if signal.getsignal(signal.SIGINT) is _interrupted_early:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except KeyboardInterrupt:
        sys.stderr.write("deepfrack: interrupted\n")
        sys.exit(130)
    cli()


if __name__ == "__main__":
    main()
