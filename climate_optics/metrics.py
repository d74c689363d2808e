"""Public name kept: the metrics live in ``climate_optics.evaluation.metrics`` (re-exported here)."""

from climate_optics.evaluation.metrics import *  # noqa: F403
from climate_optics.evaluation.metrics import __all__  # noqa: F401
