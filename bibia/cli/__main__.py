"""``python -m bibia.cli``: the ``bibia`` command line."""

from bibia.cli import main

main()
