"""`python -m lastmile.cli` runs the command line."""

from lastmile.cli import main

main()
