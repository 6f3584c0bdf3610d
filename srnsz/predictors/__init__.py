"""Predictors, one registry: importing this package registers the built-in ones."""

from srnsz.predictors import blockwise, hat, interp, lossless, wavelet  # noqa: F401  (registration side effect)
from srnsz.predictors.base import (
    PREDICTORS,
    Encoded,
    Predictor,
    create_predictor,
    list_predictors,
    register_predictor,
)

__all__ = ["PREDICTORS", "Encoded", "Predictor", "create_predictor", "list_predictors", "register_predictor"]
