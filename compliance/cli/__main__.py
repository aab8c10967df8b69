"""``python -m compliance.cli``: the same command line as ``compliance``."""

from compliance.cli import main

main()
