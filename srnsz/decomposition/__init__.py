"""Grid traversal, splines, blends, dual quantization and tiling: how a field is cut and visited."""
