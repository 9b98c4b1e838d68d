"""``python -m investigator.cli`` runs the command line (as the ``investigator`` script does)."""

from investigator.cli import main

main()
