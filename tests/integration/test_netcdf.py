"""NetCDF/HDF5 fidelity (srnsz.io.cf, srnsz.io.datasets): missing values declared by attributes, CF packing, attributes,
dimension names and coordinates restored, whole datasets to Zarr and back, and the CLI's messages."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA, smooth_field

import srnsz
from srnsz.bounds import finite_range
from srnsz.cli import main

xr = pytest.importorskip("xarray")
pytest.importorskip("scipy")

NETCDF_FILES = sorted((SHARED_DATA / "netcdf").glob("*.nc")) if (SHARED_DATA / "netcdf").is_dir() else []


def _land(shape: tuple[int, ...], share: float = 0.5) -> np.ndarray:
    grid = np.meshgrid(*[np.linspace(0, 1, n) for n in shape[-2:]], indexing="ij")
    return np.broadcast_to(np.sin(5 * grid[0]) + grid[1] > 2 * share, shape).copy()


def _write(path, variables: dict, coords: dict, attrs: dict | None = None) -> None:
    ds = xr.Dataset(variables, coords=coords, attrs=attrs or {})
    ds.to_netcdf(path, format="NETCDF3_64BIT", engine="scipy", encoding={k: {"_FillValue": None} for k in ds.variables})


@pytest.fixture
def foam(tmp_path):
    """Ocean velocity V with missing_value = 1e35 over land (about half), as the FOAM files have it."""
    shape = (4, 30, 40)
    v = (smooth_field(shape, seed=5) * 0.3).astype(np.float32)
    land = _land(shape)
    v[land] = np.float32(1e35)
    path = tmp_path / "foam.nc"
    _write(path, {"V": (("depth", "lat", "lon"), v, {"units": "m/s", "long_name": "meridional velocity",
                                                     "missing_value": np.float32(1e35)})},
           {"depth": ("depth", np.array([5.0, 15, 30, 50]), {"units": "m", "positive": "down"}),
            "lat": ("lat", np.linspace(-60, 60, 30), {"units": "degrees_north"}),
            "lon": ("lon", np.linspace(0, 351, 40), {"units": "degrees_east"})}, {"title": "FOAM-like"})
    return path, v, land


def test_foam_trap_is_gone_and_the_variable_comes_back_whole(foam, tmp_path, capsys):
    path, v, land = foam
    out, back = tmp_path / "v.srnsz", tmp_path / "back.nc"
    assert main(["compress", str(path), "--var", "V", "-o", str(out), "--eb", "1e-3"]) == 0
    assert "come back exactly" in capsys.readouterr().err
    stream = out.read_bytes()
    eb = srnsz.info(stream).error_bound["abs"]
    valid = v[~land].astype(np.float64)
    assert eb == pytest.approx(1e-3 * (valid.max() - valid.min()))
    assert main(["decompress", str(out), "-o", str(back)]) == 0
    original, restored = xr.open_dataset(path, decode_cf=False), xr.open_dataset(back, decode_cf=False)
    assert restored.V.dims == original.V.dims
    assert set(restored.V.attrs) == set(original.V.attrs) and restored.V.attrs["units"] == "m/s"
    assert restored.V.attrs["missing_value"] == np.float32(1e35)
    for name in ("depth", "lat", "lon"):
        assert np.array_equal(restored[name].values, original[name].values)
        assert restored[name].attrs == original[name].attrs
    assert restored.attrs["title"] == "FOAM-like"
    r = restored.V.values
    assert np.abs(r[~land].astype(np.float64) - valid).max() <= eb
    assert np.array_equal(r[land], v[land])
    assert main(["info", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "missing values" in shown and "1e+35" in shown and "variable" in shown


def test_fill_value_and_valid_range_from_attributes(tmp_path):
    shape = (3, 20, 30)
    sst = (smooth_field(shape, seed=2) * 10 + 15).astype(np.float32)
    land = _land(shape, 0.3)
    sst[land] = -999.0
    sst[0, 0, :4] = 40.0  # outside valid_range: missing
    path = tmp_path / "sst.nc"
    _write(path, {"sst": (("time", "lat", "lon"), sst, {"_FillValue": np.float32(-999.0),
                                                        "valid_range": np.array([-1.8, 35], np.float32)})},
           {"time": ("time", np.arange(3.0))})
    out = tmp_path / "sst.srnsz"
    assert main(["compress", str(path), "--var", "sst", "-o", str(out), "--eb", "1e-2"]) == 0
    missing = land | (sst == 40.0)
    recon = srnsz.decompress(out.read_bytes())
    eb = srnsz.info(out.read_bytes()).error_bound["abs"]
    assert eb == pytest.approx(1e-2 * float(np.ptp(sst[~missing].astype(np.float64))))
    assert np.array_equal(recon[missing], sst[missing])
    assert np.abs(recon[~missing].astype(np.float64) - sst[~missing]).max() <= eb


@pytest.fixture
def era5(tmp_path):
    """ERA5-style file: t2m packed as int16 with scale_factor/add_offset and a missing_value, plus a float."""
    shape = (3, 24, 36)
    temp = smooth_field(shape, np.float64, seed=9) * 12 + 280
    packed = np.rint((temp - 280.0) / 0.002).astype(np.int16)
    packed[:, :4, :5] = -32767
    path = tmp_path / "era5.nc"
    _write(path, {"t2m": (("time", "latitude", "longitude"), packed,
                          {"scale_factor": 0.002, "add_offset": 280.0, "missing_value": np.int16(-32767),
                           "units": "K"}),
                  "d2m_C": (("time", "latitude", "longitude"), (temp - 275).astype(np.float32), {}),
                  "count": (("time",), np.arange(3, dtype=np.int32), {})},
           {"latitude": ("latitude", np.linspace(90, -90, 24).astype(np.float32))})
    return path, packed


def test_packed_variable_is_unpacked_compressed_and_packed_again(era5, tmp_path, capsys):
    path, packed = era5
    out, back = tmp_path / "t.srnsz", tmp_path / "t.nc"
    assert main(["compress", str(path), "--var", "t2m", "-o", str(out), "--eb", "1e-3"]) == 0
    assert "packed" in capsys.readouterr().err
    recon = srnsz.decompress(out.read_bytes())
    missing = packed == -32767
    assert np.isnan(recon[missing]).all()
    unpacked = packed * 0.002 + 280.0
    eb = srnsz.info(out.read_bytes()).error_bound["abs"]
    assert np.abs(recon[~missing] - unpacked[~missing]).max() <= eb
    assert main(["decompress", str(out), "-o", str(back)]) == 0
    restored = xr.open_dataset(back, decode_cf=False).t2m
    assert restored.dtype == np.int16 and restored.attrs["scale_factor"] == 0.002
    assert np.array_equal(restored.values[missing], packed[missing])
    assert np.abs(restored.values[~missing].astype(int) - packed[~missing]).max() <= np.ceil(eb / 0.002)


def _unpacked_by_readers(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """t2m of ``path`` as netCDF4-python and xarray unpack it: reader -> (values, valid mask)."""
    netcdf4 = pytest.importorskip("netCDF4")
    with netcdf4.Dataset(path) as nc:
        values = nc["t2m"][:]
        by_netcdf4 = (np.ma.getdata(values), ~np.ma.getmaskarray(values))
    with xr.open_dataset(path) as ds:
        by_xarray = (ds.t2m.values, np.isfinite(ds.t2m.values))
    return {"netCDF4": by_netcdf4, "xarray": by_xarray}


@pytest.mark.parametrize("factors", [np.float64, np.float32])
def test_packed_variables_hold_the_bound_as_cf_readers_unpack_them(tmp_path, factors):
    shape = (3, 40, 60)
    temp = smooth_field(shape, np.float64, seed=9) * 30 + 270
    scale, offset = factors(0.0017365), factors(273.15)
    packed = np.rint((temp - float(offset)) / float(scale)).astype(np.int16)
    packed[:, :4, :5] = -32767
    path = tmp_path / "era5.nc"
    _write(path, {"t2m": (("time", "latitude", "longitude"), packed,
                          {"scale_factor": scale, "add_offset": offset, "missing_value": np.int16(-32767),
                           "units": "K"})}, {})
    original = _unpacked_by_readers(path)
    step = float(scale)
    for eb, mode in (("1e-3", "rel"), ("1e-4", "rel"), (repr(3 * step), "abs"), (repr(step), "abs"), ("0.02", "rel")):
        out, back = tmp_path / "t.srnsz", tmp_path / "back.nc"
        assert main(["compress", str(path), "--var", "t2m", "-o", str(out), "--eb", eb, "--mode", mode, "--force"]) == 0
        assert main(["decompress", str(out), "-o", str(back), "--force"]) == 0
        stated = srnsz.info(out.read_bytes()).error_bound["abs"]
        requested = float(eb) if mode == "abs" else float(eb) * float(np.ptp(original["xarray"][0][packed != -32767]))
        assert stated <= requested
        for reader, (values, valid) in _unpacked_by_readers(back).items():
            before, mask = original[reader]
            assert np.array_equal(valid, mask), reader
            assert np.abs(values[valid] - before[valid]).max() <= stated, (reader, eb)
            assert np.abs(values[valid].astype(np.float64) - before[valid]).max() <= stated, (reader, eb)
    assert main(["compress", str(path), "--var", "t2m", "-o", str(tmp_path / "p.srnsz"), "--mode", "psnr",
                 "--eb", "60"]) == 1  # a quality target is not kept through re-packing: refused
    assert not (tmp_path / "p.srnsz").exists()


def test_a_variable_that_cannot_be_compressed_is_named_with_the_reason(era5, tmp_path, capsys):
    path, _ = era5
    assert main(["compress", str(path), "--var", "count", "-o", str(tmp_path / "c.srnsz")]) == 1
    err = capsys.readouterr().err
    assert "'count'" in err and "int32" in err and "t2m" in err
    assert main(["compress", str(path), "--var", "nope", "-o", str(tmp_path / "c.srnsz")]) == 1
    assert "t2m" in capsys.readouterr().err
    assert not (tmp_path / "c.srnsz").exists()


def test_npy_with_undeclared_fills_and_a_borderline_value(tmp_path, capsys):
    data = (smooth_field((6, 20, 24), seed=4) * 3 + 10).astype(np.float32)
    land = _land(data.shape, 0.4)
    data[land] = np.float32(1e20)
    np.save(tmp_path / "f.npy", data)
    assert main(["compress", str(tmp_path / "f.npy"), "-o", str(tmp_path / "f.srnsz"), "--eb", "1e-3"]) == 0
    assert "undeclared fill 1e+20" in capsys.readouterr().err
    eb = srnsz.info((tmp_path / "f.srnsz").read_bytes()).error_bound["abs"]
    assert eb == pytest.approx(1e-3 * float(np.ptp(data[~land].astype(np.float64))))
    topography = (smooth_field((30, 40), seed=1) * 5000 + 5000).astype(np.float32)
    topography[:3, :3] = -9999.0
    np.save(tmp_path / "t.npy", topography)
    assert main(["compress", str(tmp_path / "t.npy"), "-o", str(tmp_path / "t.srnsz")]) == 0
    assert "--fill-value -9999" in capsys.readouterr().err  # kept as data, but the user is told
    assert main(["compress", str(tmp_path / "t.npy"), "-o", str(tmp_path / "t2.srnsz"), "--fill-value", "-9999"]) == 0
    assert srnsz.info((tmp_path / "t2.srnsz").read_bytes()).missing["points"] == 9


def test_hdf5_attributes_declare_fills_and_come_back(tmp_path):
    h5py = pytest.importorskip("h5py")
    data = smooth_field((10, 20, 20), seed=6)
    land = _land(data.shape, 0.3)
    data[land] = -1.0e30
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["t"] = data
        f["t"].attrs["_FillValue"] = np.float32(-1e30)
        f["t"].attrs["units"] = "K"
    assert main(["compress", str(tmp_path / "in.h5"), "--var", "t", "-o", str(tmp_path / "t.srnsz")]) == 0
    assert srnsz.info((tmp_path / "t.srnsz").read_bytes()).missing["fill_values"] == [-1e30]
    assert main(["decompress", str(tmp_path / "t.srnsz"), "-o", str(tmp_path / "back.h5")]) == 0
    with h5py.File(tmp_path / "back.h5") as f:
        assert f["t"].attrs["units"] == "K" and np.array_equal(f["t"][()][land], data[land])


def _assert_dataset_round_trip(source, back, rel: float) -> None:
    a, b = xr.open_dataset(source, decode_cf=False), xr.open_dataset(back, decode_cf=False)
    assert sorted(a.variables) == sorted(b.variables)
    assert a.attrs.keys() == b.attrs.keys() and all(np.array_equal(a.attrs[k], b.attrs[k]) for k in a.attrs)
    for name, va in a.variables.items():
        vb = b.variables[name]
        assert va.dims == vb.dims and va.dtype == vb.dtype, name
        assert set(va.attrs) == set(vb.attrs) and all(np.array_equal(va.attrs[k], vb.attrs[k]) for k in va.attrs)
        if va.dtype.kind == "f" and va.ndim > 1:
            rule = srnsz.io.cf.rule_from_attrs(va.attrs)
            found = srnsz.missing.find_missing(va.values, rule)
            mask = np.zeros(va.shape, bool) if found.mask is None else found.mask
            x, y = va.values, vb.values
            eb = rel * finite_range(x, found.mask)
            assert np.abs(x[~mask].astype(np.float64) - y[~mask]).max() <= eb, name
            assert np.array_equal(x[mask].view(f"u{x.itemsize}"), y[mask].view(f"u{x.itemsize}")), name
        else:
            assert np.array_equal(va.values, vb.values), name


def test_whole_dataset_to_zarr_and_back(era5, foam, tmp_path):
    pytest.importorskip("zarr")
    for path in (era5[0], foam[0]):
        store, back = tmp_path / f"{path.stem}.zarr", tmp_path / f"{path.stem}_back.nc"
        assert main(["compress", str(path), "-o", str(store), "--eb", "1e-3"]) == 0
        assert main(["compress", str(path), "-o", str(store)]) == 1  # exists
        opened = xr.open_zarr(store, consolidated=False)  # plain xarray with srnsz installed
        assert set(opened.data_vars) | set(opened.coords) == set(xr.open_dataset(path).variables)
        assert main(["decompress", str(store), "-o", str(back)]) == 0
        _assert_dataset_round_trip(path, back, 1e-3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.skipif(not NETCDF_FILES, reason="shared NetCDF files absent")
@pytest.mark.parametrize("path", NETCDF_FILES, ids=lambda p: p.name)
def test_shared_netcdf_files_round_trip_through_zarr(path, tmp_path):
    pytest.importorskip("zarr")
    store, back = tmp_path / "out.zarr", tmp_path / "back.nc"
    assert main(["compress", str(path), "-o", str(store), "--eb", "1e-3"]) == 0
    assert main(["decompress", str(store), "-o", str(back)]) == 0
    _assert_dataset_round_trip(path, back, 1e-3)


def test_packed_values_at_the_ends_of_the_integer_range_do_not_wrap(tmp_path):
    rng = np.random.default_rng(3)
    packed = rng.integers(32000, 32767, (20, 30)).astype(np.int16)
    packed[0, :4] = -32768  # _FillValue
    packed[1, :3] = -25000  # outside valid_range: missing, its integers must come back
    path = tmp_path / "pk.nc"
    _write(path, {"t": (("y", "x"), packed, {"scale_factor": 0.01, "add_offset": 0.0, "_FillValue": np.int16(-32768),
                                             "missing_value": np.int16(-32767),
                                             "valid_range": np.array([-20000, 32767], np.int16)})}, {})
    for eb in ("0.5", "0.016", "0.003"):
        out, back = tmp_path / f"{eb}.srnsz", tmp_path / f"{eb}.nc"
        assert main(["compress", str(path), "--var", "t", "-o", str(out), "--eb", eb, "--mode", "abs"]) == 0
        assert main(["decompress", str(out), "-o", str(back)]) == 0
        restored = xr.open_dataset(back, decode_cf=False).t.values
        assert restored.dtype == np.int16
        missing = (packed == -32768) | (packed == -25000)
        assert np.array_equal(restored[missing], packed[missing])
        error = np.abs(restored[~missing].astype(np.int64) - packed[~missing]) * 0.01
        assert error.max() <= float(eb) + 1e-9
        assert (restored[~missing] > -20000).all()


@pytest.mark.parametrize("dtype", [np.int16, np.int64])
def test_a_tiny_scale_factor_caps_the_steps_at_the_integer_span(tmp_path, dtype):
    """scale_factor 1e-30 under abs bound 0.05: more steps than the type holds, so every integer may move anywhere;
    the bound stated is within the one asked and holds on what readers unpack."""
    packed = np.rint(smooth_field((16, 20), np.float64, seed=2) * 1000).astype(dtype)
    path = tmp_path / "tiny.nc"
    xr.Dataset({"t": (("y", "x"), packed, {"scale_factor": 1e-30})}).to_netcdf(
        path, engine="h5netcdf", encoding={"t": {"_FillValue": None}})
    out, back = tmp_path / "t.srnsz", tmp_path / "back.nc"
    assert main(["compress", str(path), "--var", "t", "-o", str(out), "--eb", "0.05", "--mode", "abs"]) == 0
    assert main(["decompress", str(out), "-o", str(back)]) == 0
    stated = srnsz.info(out.read_bytes()).error_bound["abs"]
    assert 0 < stated <= 0.05
    with xr.open_dataset(path) as before, xr.open_dataset(back) as after:
        assert np.abs(after.t.values - before.t.values).max() <= stated


def test_unusable_attributes_are_ignored(tmp_path):
    data = smooth_field((4, 10, 12))
    path = tmp_path / "odd.nc"
    _write(path, {"v": (("t", "y", "x"), data, {"missing_value": "N/A", "valid_min": np.zeros(0)})}, {})
    assert main(["compress", str(path), "--var", "v", "-o", str(tmp_path / "v.srnsz")]) == 0


def test_string_coordinates_keep_their_shape(tmp_path):
    path = tmp_path / "st.nc"
    ds = xr.Dataset({"v": (("station", "t"), smooth_field((3, 40)))},
                    coords={"station": ("station", np.array(["s0", "s1", "abc"]))})
    ds.to_netcdf(path, format="NETCDF3_64BIT", engine="scipy")
    assert main(["compress", str(path), "--var", "v", "-o", str(tmp_path / "v.srnsz")]) == 0
    assert main(["decompress", str(tmp_path / "v.srnsz"), "-o", str(tmp_path / "back.nc")]) == 0
    back = xr.open_dataset(tmp_path / "back.nc")
    assert back.station.dims == ("station",) and list(back.station.values) == ["s0", "s1", "abc"]


def test_dataset_conversion_takes_the_command_line_rule(foam, tmp_path, capsys):
    pytest.importorskip("zarr")
    path, _, land = foam
    with xr.open_dataset(path, decode_cf=False) as ds:  # the same file without its missing_value attribute
        plain = ds.copy()
        del plain.V.attrs["missing_value"]
        plain.to_netcdf(tmp_path / "plain.nc", format="NETCDF3_64BIT", engine="scipy")
    assert main(["compress", str(tmp_path / "plain.nc"), "-o", str(tmp_path / "a.zarr"), "--no-fill-detection"]) == 0
    assert "missing points" not in capsys.readouterr().out
    assert main(["compress", str(tmp_path / "plain.nc"), "-o", str(tmp_path / "b.zarr")]) == 0
    assert f"{int(land.sum())} missing points" in capsys.readouterr().out
    (tmp_path / "c.zarr").mkdir()
    (tmp_path / "c.zarr" / "keep.txt").write_text("mine")
    assert main(["compress", str(tmp_path / "plain.nc"), "-o", str(tmp_path / "c.zarr"), "--force"]) == 1
    assert (tmp_path / "c.zarr" / "keep.txt").exists()


def _structure(path) -> dict:
    """What a NetCDF round trip must keep besides values, read by netCDF4: the format, and per group its dimensions
    (size, unlimited), the type of each attribute and each variable's type and dimensions."""
    netcdf4 = pytest.importorskip("netCDF4")

    def kind(value) -> str:
        return "str" if isinstance(value, str) else str(np.asarray(value).dtype)

    groups: dict = {}

    def walk(group, path: str) -> None:
        groups[path] = {
            "dims": {d: (len(v), v.isunlimited()) for d, v in group.dimensions.items()},
            "attrs": {a: kind(group.getncattr(a)) for a in group.ncattrs() if a != "_NCProperties"},
            "variables": {n: (str(v.dtype), v.dimensions, {a: kind(v.getncattr(a)) for a in v.ncattrs()})
                          for n, v in group.variables.items()}}
        for name, sub in group.groups.items():
            walk(sub, f"{path}{name}/")

    with netcdf4.Dataset(path) as nc:
        walk(nc, "/")
        return {"format": nc.file_format, "groups": groups}


def _values_within(source, back, rel: float) -> None:
    """Every variable of every group of ``back`` equals ``source``'s, floating-point ones of 2+ dimensions within
    ``rel`` of their valid range (their missing values exact)."""
    netcdf4 = pytest.importorskip("netCDF4")
    with netcdf4.Dataset(source) as a, netcdf4.Dataset(back) as b:
        def walk(ga, gb) -> None:
            assert sorted(ga.groups) == sorted(gb.groups)
            for name, va in ga.variables.items():
                va.set_auto_maskandscale(False)
                gb.variables[name].set_auto_maskandscale(False)
                x, y = va[...], gb.variables[name][...]
                if va.dtype.kind == "f" and va.ndim > 1:
                    rule = srnsz.io.cf.rule_from_attrs({k: va.getncattr(k) for k in va.ncattrs()})
                    found = srnsz.missing.find_missing(x, rule)
                    mask = np.zeros(x.shape, bool) if found.mask is None else found.mask
                    eb = rel * finite_range(x, found.mask)
                    assert np.abs(x[~mask].astype(np.float64) - y[~mask]).max() <= eb, name
                    assert np.array_equal(x[mask], y[mask]), name
                else:
                    assert np.array_equal(x, y), name
            for name in ga.groups:
                walk(ga.groups[name], gb.groups[name])

        walk(a, b)


@pytest.fixture
def grouped(tmp_path):
    """A NetCDF-4 file with nested groups, an unlimited dimension and typed attributes in every group."""
    path = tmp_path / "grouped.nc"
    rng = np.random.default_rng(1)
    root = xr.Dataset({"temp": (("time", "y", "x"), smooth_field((3, 20, 24), seed=1), {"z_t": np.float32(5.0)}),
                       "time": ("time", np.arange(3.0))}, attrs={"title": "grouped", "version": np.float32(1.5)})
    root.to_netcdf(path, engine="h5netcdf", unlimited_dims=["time"])
    ocean = xr.Dataset({"sst": (("time", "y", "x"), smooth_field((3, 20, 24), seed=2) + 15),
                        "u": (("depth", "y", "x"), smooth_field((4, 20, 24), np.float64, seed=3)),
                        "depth": ("depth", np.array([5.0, 10, 20, 40], np.float32))},
                       attrs={"note": "ocean", "level": np.int16(3)})
    ocean.to_netcdf(path, mode="a", group="ocean", engine="h5netcdf")
    deep = xr.Dataset({"w": (("depth", "y", "x"), smooth_field((4, 20, 24), seed=4), {"scale": np.int8(2)}),
                       "count": ("depth", rng.integers(0, 9, 4))})
    deep.to_netcdf(path, mode="a", group="ocean/deep", engine="h5netcdf")
    return path


def test_groups_are_carried_through_zarr_and_back(grouped, tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    store, back = tmp_path / "g.zarr", tmp_path / "back.nc"
    assert main(["compress", str(grouped), "-o", str(store), "--eb", "1e-3"]) == 0
    out = capsys.readouterr().out
    assert "ocean/sst: srnsz" in out and "ocean/deep/w: srnsz" in out and "ocean/deep/count: lossless" in out
    root = zarr.open_group(store, mode="r")
    assert sorted(root["ocean"].array_keys()) == ["depth", "sst", "u"]
    assert sorted(root["ocean/deep"].array_keys()) == ["count", "w"]
    assert xr.open_zarr(store, group="ocean/deep", consolidated=False).w.shape == (4, 20, 24)  # plain xarray
    assert main(["decompress", str(store), "-o", str(back)]) == 0
    assert _structure(back) == _structure(grouped)
    _values_within(grouped, back, 1e-3)


def test_what_xarray_cannot_read_is_refused_by_name(grouped, tmp_path, capsys):
    netcdf4 = pytest.importorskip("netCDF4")
    with netcdf4.Dataset(grouped, "a") as nc:
        odd = nc.createGroup("odd")
        pair = odd.createCompoundType(np.dtype([("a", "f4"), ("b", "i4")]), "pair_t")
        odd.createDimension("n", 3)
        odd.createVariable("pairs", pair, ("n",))
        odd.createVariable("plain", "f4", ("n",))
    assert main(["compress", str(grouped), "-o", str(tmp_path / "g.zarr")]) == 1
    err = capsys.readouterr().err
    assert "/odd/pairs" in err and "nothing written" in err and "/odd/plain" not in err  # only what is lost
    assert not (tmp_path / "g.zarr").exists() and not list(tmp_path.glob(".*part*"))


def test_a_variable_in_a_group_round_trips_into_its_group(grouped, tmp_path):
    out, back = tmp_path / "sst.srnsz", tmp_path / "back.nc"
    assert main(["compress", str(grouped), "--var", "ocean/sst", "-o", str(out)]) == 0
    assert main(["decompress", str(out), "-o", str(back)]) == 0
    with xr.open_dataset(back, group="ocean", decode_cf=False) as ds, \
            xr.open_dataset(grouped, group="ocean", decode_cf=False) as original:
        eb = srnsz.info(out.read_bytes()).error_bound["abs"]
        assert np.abs(ds.sst.values.astype(np.float64) - original.sst.values).max() <= eb
        assert ds.attrs["level"].dtype == np.int16


FORMATS = ["NETCDF3_CLASSIC", "NETCDF3_64BIT", "NETCDF3_64BIT_DATA", "NETCDF4", "NETCDF4_CLASSIC"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trips_keep_the_format_unlimited_dimensions_and_attribute_types(fmt, tmp_path):
    pytest.importorskip("zarr")
    engine = {"NETCDF3_64BIT_DATA": "netcdf4", "NETCDF4": "h5netcdf", "NETCDF4_CLASSIC": "h5netcdf"}.get(fmt, "scipy")
    if engine == "netcdf4":
        pytest.importorskip("netCDF4")  # the only writer (and reader) of CDF-5
    path = tmp_path / "in.nc"
    ds = xr.Dataset({"t": (("time", "y", "x"), smooth_field((4, 20, 24), seed=6),
                           {"valid_min": np.float32(-5), "z_t": np.float32(500.0), "level": np.int16(2),
                            "units": "K"}),
                     "time": ("time", np.arange(4.0), {"step": np.int32(6)})},
                    attrs={"cmor_version": np.float32(0.96), "realization": np.int32(1), "title": "t"})
    ds.to_netcdf(path, format=fmt, engine=engine, unlimited_dims=["time"],
                 encoding={k: {"_FillValue": None} for k in ds.variables})
    expected = _structure(path)
    assert expected["groups"]["/"]["dims"]["time"] == (4, True)
    for via in ("zarr", "stream"):
        back = tmp_path / f"back_{via}.nc"
        if via == "zarr":
            assert main(["compress", str(path), "-o", str(tmp_path / "s.zarr"), "--eb", "1e-3"]) == 0
            assert main(["decompress", str(tmp_path / "s.zarr"), "-o", str(back)]) == 0
        else:
            assert main(["compress", str(path), "--var", "t", "-o", str(tmp_path / "t.srnsz"), "--eb", "1e-3"]) == 0
            assert main(["decompress", str(tmp_path / "t.srnsz"), "-o", str(back)]) == 0
        assert _structure(back) == expected, via
        _values_within(path, back, 1e-3)


@pytest.mark.skipif(not NETCDF_FILES, reason="shared NetCDF files absent")
@pytest.mark.parametrize("path", NETCDF_FILES, ids=lambda p: p.name)
def test_shared_netcdf_files_keep_format_unlimited_dimensions_and_attribute_types(path, tmp_path):
    pytest.importorskip("zarr")
    expected = _structure(path)
    store, back = tmp_path / "s.zarr", tmp_path / "back.nc"
    assert main(["compress", str(path), "-o", str(store), "--eb", "1e-3"]) == 0
    assert main(["decompress", str(store), "-o", str(back)]) == 0
    assert _structure(back) == expected
    var = max(expected["groups"]["/"]["variables"], key=lambda n: len(expected["groups"]["/"]["variables"][n][1]))
    assert main(["compress", str(path), "--var", var, "-o", str(tmp_path / "v.srnsz")]) == 0
    assert main(["decompress", str(tmp_path / "v.srnsz"), "-o", str(tmp_path / "v.nc")]) == 0
    kept = _structure(tmp_path / "v.nc")
    assert kept["format"] == expected["format"]
    assert kept["groups"]["/"]["attrs"] == expected["groups"]["/"]["attrs"]
    for name, entry in kept["groups"]["/"]["variables"].items():
        assert entry == expected["groups"]["/"]["variables"][name], name
    for name, dim in kept["groups"]["/"]["dims"].items():
        assert dim == expected["groups"]["/"]["dims"][name], name


def _pop_like(path, shape=(384, 320)):
    """A POP-like field on a displaced-pole grid: 2-D ULAT and a ULONG wrapping at 360 (float64), urot float32 with
    a land fill; the file the stream is made from."""
    j, i = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    s = j / (shape[0] - 1)
    lat = -79.0 + 168.0 * s ** 1.1 - 8.0 * s ** 3 * np.cos(2 * np.pi * (i / shape[1] - 0.2))
    lon = (320.0 + 360.0 * (i + 0.5) / shape[1] + 25.0 * s ** 4 * np.sin(2 * np.pi * i / shape[1])) % 360.0
    urot = (np.cos(np.deg2rad(lat)) * np.sin(2 * np.deg2rad(lon)) + 0.001 * np.sin(lat * lon / 50)).astype(np.float32)
    land = np.sin(np.deg2rad(lat) * 3) * np.cos(np.deg2rad(lon) * 2) > 0.6
    urot[land] = np.float32(-1e34)
    xr.Dataset({"urot": (("nlat", "nlon"), urot, {"_FillValue": np.float32(-1e34), "coordinates": "ULONG ULAT"}),
                "ULAT": (("nlat", "nlon"), lat, {"units": "degrees_north"}),
                "ULONG": (("nlat", "nlon"), lon, {"units": "degrees_east"})}).to_netcdf(
        path, engine="h5netcdf", encoding={"ULAT": {"_FillValue": None}, "ULONG": {"_FillValue": None}})
    return urot, land, lat, lon


def test_curvilinear_coordinates_cost_little_and_come_back_within_their_bound(tmp_path):
    urot, land, lat, lon = _pop_like(tmp_path / "pop.nc")
    out, back = tmp_path / "u.srnsz", tmp_path / "back.nc"
    assert main(["compress", str(tmp_path / "pop.nc"), "--var", "urot", "-o", str(out), "--eb", "1e-4"]) == 0
    stream = out.read_bytes()
    info = srnsz.info(stream)
    data_only = srnsz.compress(urot, info.error_bound["abs"], "abs", fill_value=-1e34)
    ratio, data_ratio = urot.nbytes / len(stream), urot.nbytes / len(data_only)
    assert data_ratio > 15  # a bound where the data alone compress about as POP's urot does (20.7)
    assert ratio >= 0.8 * data_ratio, (ratio, data_ratio)
    assert info.format_version == "1.14"  # coded coordinates need 1.10; every new stream 1.14
    assert main(["decompress", str(out), "-o", str(back)]) == 0
    with xr.open_dataset(back, decode_cf=False) as ds:
        assert np.abs(ds.urot.values[~land].astype(np.float64) - urot[~land]).max() <= info.error_bound["abs"]
        assert np.array_equal(ds.urot.values[land], urot[land])
        for name, original, axis in (("ULAT", lat, 0), ("ULONG", lon, 1)):
            spacing = np.median(np.abs(np.diff(original, axis=axis)))  # the grid's step along its fast axis
            values = ds[name].values
            assert values.dtype == original.dtype and ds[name].dims == ("nlat", "nlon")
            assert np.abs(values - original).max() <= 1e-4 * spacing, name
        assert ds.ULONG.values.min() >= 0 and ds.ULONG.values.max() < 360  # wrapped as it was


def test_coordinates_shared_by_variables_are_stored_once_in_a_zarr_store(tmp_path):
    zarr = pytest.importorskip("zarr")
    urot, _, lat, lon = _pop_like(tmp_path / "pop.nc")
    with xr.open_dataset(tmp_path / "pop.nc", decode_cf=False) as ds:
        two = ds.assign(vrot=ds.urot.copy(data=np.where(urot > -1e30, -urot, urot)))
        two.vrot.attrs = dict(ds.urot.attrs)
        two.to_netcdf(tmp_path / "two.nc", engine="h5netcdf",
                      encoding={"ULAT": {"_FillValue": None}, "ULONG": {"_FillValue": None}})
    assert main(["compress", str(tmp_path / "two.nc"), "-o", str(tmp_path / "s.zarr"), "--eb", "1e-4"]) == 0
    root = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert sorted(root.array_keys()) == ["ULAT", "ULONG", "urot", "vrot"]  # one array per variable, no copies
    sizes = {name: sum(p.stat().st_size for p in (tmp_path / "s.zarr" / name).rglob("*") if p.is_file())
             for name in root.array_keys()}
    assert sizes["urot"] < lat.nbytes / 4 and sizes["vrot"] < lat.nbytes / 4  # coordinates not inside the data
    assert np.array_equal(root["ULAT"][:], lat) and np.array_equal(root["ULONG"][:], lon)


@pytest.mark.parametrize("dtype, factors, scale, offset", [
    (np.float32, np.float32, 100.0, -12.5), (np.float64, np.float64, 100.0, -12.5),
    (np.float32, np.float64, 100.0, -12.5), (np.float64, np.float32, 100.0, -12.5),
    (np.float64, np.float32, 0.0064068018, 6245.413),  # xarray unpacks in float32: its ulp at 6245 is 4.9e-4
])
def test_scaled_float_variables_hold_the_bound_on_the_values_readers_see(tmp_path, dtype, factors, scale, offset):
    stored = (smooth_field((3, 40, 60), np.float64, seed=4) * 3 + 1).astype(dtype)
    scale, offset = factors(scale), factors(offset)
    path = tmp_path / "scaled.nc"
    _write(path, {"t": (("time", "lat", "lon"), stored, {"scale_factor": scale, "add_offset": offset})}, {})
    with xr.open_dataset(path) as ds:
        before = ds.t.values.astype(np.float64)
    for eb, mode in (("0.5", "abs"), ("1e-3", "rel"), ("3e-3", "rel"), ("1e-6", "rel")):
        requested = float(eb) * (np.ptp(before) if mode == "rel" else 1.0)
        out, back = tmp_path / "t.srnsz", tmp_path / "back.nc"
        assert main(["compress", str(path), "--var", "t", "-o", str(out), "--eb", eb, "--mode", mode, "--force"]) == 0
        assert main(["decompress", str(out), "-o", str(back), "--force"]) == 0
        assert srnsz.info(out.read_bytes()).error_bound["abs"] <= requested / float(scale)
        with xr.open_dataset(back) as ds:
            assert np.abs(ds.t.values.astype(np.float64) - before).max() <= requested, (eb, mode)
            assert np.abs(ds.t.values - before.astype(ds.t.dtype)).max() <= requested, (eb, mode)
        assert main(["compress", str(path), "-o", str(tmp_path / "t.zarr"), "--eb", eb, "--mode", mode,
                     "--force"]) == 0
        with xr.open_zarr(tmp_path / "t.zarr", consolidated=False) as ds:  # its attributes are JSON: float64
            in_double = stored.astype(np.float64) * float(scale) + float(offset)
            assert np.abs(ds.t.values.astype(np.float64) - in_double).max() <= requested, (eb, mode)
        assert main(["decompress", str(tmp_path / "t.zarr"), "-o", str(back), "--force"]) == 0
        with xr.open_dataset(back) as ds:  # the attributes' own types again
            assert np.abs(ds.t.values.astype(np.float64) - before).max() <= requested, (eb, mode)


def test_scaled_float_variables_are_refused_chunk_by_chunk(tmp_path, capsys):
    stored = smooth_field((4, 20, 30), np.float32, seed=2)
    path = tmp_path / "scaled4.nc"
    xr.Dataset({"t": (("z", "y", "x"), stored, {"scale_factor": np.float32(100.0)})}).to_netcdf(
        path, engine="h5netcdf", encoding={"t": {"_FillValue": None}})
    out = tmp_path / "t.srnszc"
    assert main(["compress", str(path), "--var", "t", "-o", str(out), "--eb", "0.5", "--mode", "abs",
                 "--chunk", "2", "10", "15"]) == 1
    assert "without --chunk" in capsys.readouterr().err and not out.exists()


def test_unsigned_packed_integers_are_refused_alone_and_copied_in_a_dataset(tmp_path, capsys):
    raw = (np.add.outer(np.arange(32), np.arange(40)) * 3).clip(0, 250).astype(np.uint8).view(np.int8)
    path = tmp_path / "u.nc"
    _write(path, {"v": (("y", "x"), raw, {"_Unsigned": "true", "scale_factor": np.float32(0.5)})}, {})
    assert main(["compress", str(path), "--var", "v", "-o", str(tmp_path / "u.srnsz")]) == 1
    assert "_Unsigned" in capsys.readouterr().err
    assert not (tmp_path / "u.srnsz").exists()
    assert main(["compress", str(path), "-o", str(tmp_path / "u.zarr"), "--eb", "1e-2"]) == 0
    with xr.open_dataset(path) as a, xr.open_zarr(tmp_path / "u.zarr", consolidated=False) as b:
        assert a.v.values.min() == 0 and np.array_equal(a.v.values, b.v.values)


@pytest.mark.parametrize("mode", ["psnr", "ssim"])
def test_quality_modes_are_refused_where_nothing_would_check_them(foam, tmp_path, mode, capsys):
    path, _, _ = foam
    zarr = tmp_path / "q.zarr"
    assert main(["compress", str(path), "-o", str(zarr), "--eb", "0.99" if mode == "ssim" else "60",
                 "--mode", mode]) == 1
    assert mode in capsys.readouterr().err and not zarr.exists()


def test_a_variable_is_not_written_under_a_coordinate_name(foam, tmp_path, capsys):
    path, _, _ = foam
    out, back = tmp_path / "v.srnsz", tmp_path / "back.nc"
    assert main(["compress", str(path), "--var", "V", "-o", str(out), "--eb", "1e-3"]) == 0
    assert main(["decompress", str(out), "-o", str(back), "--var", "lat"]) == 1
    assert "coordinates" in capsys.readouterr().err and not back.exists()
