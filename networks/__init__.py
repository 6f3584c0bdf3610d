"""Network definitions only (tensor in, tensor out). Importing this package registers every network."""

from srnsz.networks import autoencoder, hat  # noqa: F401  (registration side effects)
from srnsz.networks.registry import ModelEntry, create_model, list_models, model_entry, model_kwargs

__all__ = ["ModelEntry", "create_model", "list_models", "model_entry", "model_kwargs"]
