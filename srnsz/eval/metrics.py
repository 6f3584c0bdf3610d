"""The quality metrics: :mod:`srnsz.metrics` (below the predictors, which use them), importable here too."""

from srnsz.metrics import *  # noqa: F403
