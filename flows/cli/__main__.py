"""``python -m flows.cli`` runs the ``climate-optics`` command (e.g. under ``torchrun``)."""

from flows.cli import main

main()
