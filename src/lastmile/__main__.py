"""`python -m lastmile` runs the command line."""

from lastmile.cli import main

main()
