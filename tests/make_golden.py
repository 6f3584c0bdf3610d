"""Regenerate the golden stream (only when the format version changes on purpose):
python tests/make_golden.py"""

from pathlib import Path

import numpy as np
from conftest import smooth_field

import srnsz

HERE = Path(__file__).parent / "data"

if __name__ == "__main__":
    data = smooth_field((12, 17, 23), seed=7)
    data[0, 0, :3] = [np.nan, np.inf, -np.inf]
    stream = srnsz.compress(data, 1e-3, "rel")
    (HERE / "golden_v1.srnsz").write_bytes(stream)
    np.save(HERE / "golden_v1_original.npy", data)
    np.save(HERE / "golden_v1_expected.npy", srnsz.decompress(stream))
