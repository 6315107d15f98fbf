"""``python -m knowit_app`` runs the same Hydra app as ``knowit-app``."""

from knowit_app.app import main

main()
