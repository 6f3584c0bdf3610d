"""Entropy coding of quantization codes (context mixing, static contexts, zstd) and lossless side streams."""
