"""``python -m investigator`` runs the command line."""

from .cli import main

main()
