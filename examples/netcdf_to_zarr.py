"""A NetCDF dataset to a Zarr store and back, opened with xarray.

    python examples/netcdf_to_zarr.py OUT_DIR

Writes OUT_DIR/ocean.nc (a generated dataset: sea temperature with land as missing values, a time axis and an
integer variable), OUT_DIR/ocean.zarr (every floating-point data variable through the srnsz codec within 1e-3 of
its valid range, everything else copied losslessly) and OUT_DIR/ocean_back.nc, and checks the bound.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

from srnsz.io.datasets import compress_dataset, decompress_dataset

REL = 1e-3


def make_dataset(path: Path) -> xr.Dataset:
    """Sea temperature (time, lat, lon) with land masked by missing_value 1e20, as many ocean model outputs have."""
    time, lat, lon = np.arange(4), np.linspace(-60, 60, 40), np.linspace(0, 357, 60)
    t, y, x = np.meshgrid(time, np.radians(lat), np.radians(lon), indexing="ij")
    sst = 15 + 12 * np.cos(y) + 2 * np.sin(2 * x + 0.3 * t) * np.cos(3 * y)
    land = (np.abs(np.degrees(y) - 10) < 15) & (np.abs(np.degrees(x) - 200) < 30)
    sst = np.where(land, 1e20, sst).astype(np.float32)
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), sst, {"units": "degC", "missing_value": np.float32(1e20)}),
         "count": (("time",), np.arange(4, dtype=np.int32), {})},
        coords={"time": ("time", time.astype(np.float64), {"units": "days since 2000-01-01"}),
                "lat": ("lat", lat, {"units": "degrees_north"}), "lon": ("lon", lon, {"units": "degrees_east"})},
        attrs={"title": "generated ocean temperature"})
    ds.to_netcdf(path, format="NETCDF3_64BIT", engine="scipy",
                 encoding={k: {"_FillValue": None} for k in ds.variables})
    return ds


def main(out_dir: Path) -> dict[str, float]:
    """Runs the example into ``out_dir``; returns the ratio and the largest error over the bound."""
    out_dir.mkdir(parents=True, exist_ok=True)
    source, store, back = out_dir / "ocean.nc", out_dir / "ocean.zarr", out_dir / "ocean_back.nc"
    ds = make_dataset(source)
    compress_dataset(source, store, REL, mode="rel", force=True)

    opened = xr.open_zarr(store, consolidated=False)  # any xarray with srnsz installed reads it
    original, decoded = ds["sst"].values, opened["sst"].values
    valid = original < 1e19
    eb = REL * float(original[valid].max() - original[valid].min())
    worst = float(np.abs(decoded[valid] - original[valid]).max()) / eb
    assert worst <= 1.0, worst
    assert np.all(np.isnan(decoded[~valid]) | (decoded[~valid] == original[~valid]))  # land stays missing

    decompress_dataset(store, back, force=True)
    stored = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    ratio = source.stat().st_size / stored
    print(f"{source.name} -> {store.name}: ratio {ratio:.1f}, max error {worst:.3f} x eb; back as {back.name}")
    return {"ratio": ratio, "max_error_over_eb": worst}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the files this example writes")
    main(parser.parse_args().out_dir)
