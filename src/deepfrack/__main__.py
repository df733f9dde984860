"""``python -m deepfrack`` = the ``deepfrack`` command."""

from deepfrack.cli import main

main()
