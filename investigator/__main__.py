"""``python -m investigator`` runs the command line."""

from investigator.cli import main

main()
