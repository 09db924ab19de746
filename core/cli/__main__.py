"""``python -m docgraph.core.cli worker …`` runs the same CLI as ``docgraph``."""

from docgraph.core.cli import main

main()
