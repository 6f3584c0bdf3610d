"""Field files, NetCDF/HDF5 variables and datasets, chunked streams, the numcodecs/Zarr codec, Dask."""
