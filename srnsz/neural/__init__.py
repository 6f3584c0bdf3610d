"""Neural inference runtime (device, determinism) and the weights zoo."""
