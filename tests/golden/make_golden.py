"""Write a golden stream of the current format (only when the format version changes on purpose):
python tests/golden/make_golden.py NAME, NAME one of (each in tests/golden/data/golden_<NAME>.srnsz):
  v1_2 (name: the format version, as in tests/golden/data/golden_<name>.srnsz)
  hat (a stream of the shipped hat_tiny_bound network: its predictions must not drift)
  hat_v1_5 (format 1.5: hat_nano_series, also on the planes decoded within a level)
  v1_6 (format 1.6: a psnr stream with a restoration filter)
  v1_6_rows (format 1.6: a psnr stream with codes coded as row differences)
  v1_7 (format 1.7: binarisation 2 of the context mixing, large codes and missing values)
  v1_7_rows (format 1.7: row differences with binarisation 2)
  v1_7_lone (format 1.7: a psnr stream whose lone codes were dropped; encoder only)
  v1_8_fast (format 1.8: the fast profile's two-model mixing, as v1_7's field and bound)
  v1_10_coords (format 1.10: a variable whose 2-D coordinates are coded streams, VCRS)
  v1_11_parts (format 1.11: a field of 4M values coded in two parts, section PART; its
  original is made by parts_field(), its reconstruction checked by the
  stream's own checksum: both too large to commit)
  chunked_v1_1 (chunked layout 1.1: the index's checksum, each chunk's region in its header;
  chunked_v1_0 was written the same way by the layout 1.0 writer)
  chunked_v1_1_compact (chunked layout 1.1 of chunk streams in format 1.14)
  v1_12_mask (format 1.12: a land mask the same on every level, stored once)
  v1_13_series (format 1.13: a climate-like series: departures from its mean over axis 0 interpolated, its codes
  scanned with axis 0 last, both chosen by the tuner)
  v1_14 (format 1.14: the compact framing and the level bounds derived from the header's, missing values)
  v1_15_wavelet (format 1.15: the wavelet predictor, a psnr stream where it is smaller than interpolation's)
  hat_v1_9 (format 1.9: the default network in fixed point, on the hat golden field)
  ae_v1_9 (format 1.9: the 3D autoencoder in fixed point)
  hat_v1_16, ae_v1_16 (format 1.16: the same in fixed-point-2, every square root correctly rounded)
  Streams of formats 1.2-1.6 are written with binarisation 1, as they were.

  Keep the older ones: each must keep decoding to the same values (tests/test_golden.py)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared helpers of tests/
from conftest import series_field, smooth_field  # noqa: E402

import srnsz
from srnsz.coding.context_mixing import BINARISATION_1, BINARISATION_2, BINARISATION_3
from srnsz.coding.entropy import coding_methods
from srnsz.decomposition.parts import PartLayout
from srnsz.format.container import read_container
from srnsz.io.cf import Coordinate, VariableMeta

HERE = Path(__file__).parent / "data"


def profile_field() -> np.ndarray:
    """A small geopotential-like field: an exponential vertical profile, nearly the same at every horizontal point."""
    z, y, x = np.meshgrid(np.arange(17), np.arange(24), np.arange(32), indexing="ij")
    return (np.exp(z / 4.0) * 1000 + 3 * np.sin(y / 5.0) * np.cos(x / 6.0)).astype(np.float32)

def parts_field() -> np.ndarray:
    """64 x 256 x 256 values (two parts): a quadratic, small periodic noise and sparse spikes, from IEEE basic
    operations only (the same values on every platform)."""
    i, j, k = np.meshgrid(np.arange(64.0), np.arange(256.0), np.arange(256.0), indexing="ij", sparse=True)
    f = ((i - 32) ** 2 + 0.5 * (j - 128) ** 2 - 0.25 * (k - 100) ** 2 + 0.1 * i * j) / 1000
    f = f + ((i * 7919 + j * 104729 + k * 1299709) % 17 - 8) * 1e-4
    f = f + 5.0 * ((i % 13 == 0) & (j % 29 == 0) & (k % 31 == 0))
    return f.astype(np.float32)


def curvilinear_variable() -> tuple[np.ndarray, VariableMeta]:
    """A small field on a curvilinear grid: 2-D latitude and a longitude that wraps at 360 (format 1.10's golden)."""
    j, i = np.meshgrid(np.arange(96), np.arange(80), indexing="ij")
    s = j / 95
    lat = -70.0 + 150.0 * s ** 1.1 - 6.0 * s ** 3 * np.cos(2 * np.pi * (i / 80 - 0.2))
    lon = (300.0 + 360.0 * (i + 0.5) / 80 + 20.0 * s ** 4 * np.sin(2 * np.pi * i / 80)) % 360.0
    data = (np.cos(np.deg2rad(lat)) * np.sin(2 * np.deg2rad(lon))).astype(np.float32)
    meta = VariableMeta("urot", ("nlat", "nlon"), {"units": "1", "coordinates": "ULONG ULAT"},
                        (Coordinate("ULAT", ("nlat", "nlon"), {"units": "degrees_north"}, lat),
                         Coordinate("ULONG", ("nlat", "nlon"), {"units": "degrees_east"}, lon)), {}, "NETCDF4")
    return data, meta


if __name__ == "__main__":
    name = sys.argv[1]
    # formats 1.0-1.6 coded with the context mixing's binarisation 1
    old_writer = {"binarisation": 1} if name in ("v1", "v1_1", "v1_2", "v1_3", "v1_4", "v1_6", "v1_6_rows", "hat",
                                                 "hat_v1_5") else {}
    if name.startswith("chunked"):  # a chunked stream (srnsz.io.chunked), its field shared by every layout's golden
        import io

        from srnsz.io import chunked

        data = smooth_field((12, 20, 18), seed=11)
        data[2, 3, 4] = np.nan
        buf = io.BytesIO()
        index = chunked.compress_chunked(data, buf, eb=1e-3, mode="rel", chunk=(8, 8, 16))
        assert name.startswith(f"chunked_v{index.version[0]}_{index.version[1]}")
        (HERE / f"golden_{name}.srnszc").write_bytes(buf.getvalue())
        np.save(HERE / "golden_chunked_v1_0_original.npy", data)
        np.save(HERE / f"golden_{name}_expected.npy", chunked.decompress_chunked(io.BytesIO(buf.getvalue())))
        print(name, len(buf.getvalue()), "bytes")
        sys.exit(0)
    if name == "v1_11_parts":
        stream = srnsz.compress(parts_field(), 1e-3, "rel", parts=PartLayout(part_bytes=0))  # the cut by shape alone
        assert srnsz.info(stream).format_version == "1.11" and srnsz.info(stream).parts == 2
        (HERE / f"golden_{name}.srnsz").write_bytes(stream)
        print(name, len(stream), "bytes")
        sys.exit(0)
    if name == "v1_12_mask":  # 1.12: a land mask the same on every level, stored once
        data = smooth_field((16, 25, 33), seed=7)
        data[:, :9, :11] = np.float32(1e20)
        data[:, 20:, 30:] = np.nan
        stream = srnsz.compress(data, 1e-3, "rel")
        assert srnsz.info(stream).format_version == "1.12"
        np.save(HERE / f"golden_{name}_original.npy", data)
        (HERE / f"golden_{name}.srnsz").write_bytes(stream)
        np.save(HERE / f"golden_{name}_expected.npy", srnsz.decompress(stream))
        print(name, len(stream), "bytes")
        sys.exit(0)
    if name == "v1_14":  # 1.14: every stream (compact framing, the level bounds derived)
        data = smooth_field((20, 30, 34), seed=11)
        data[3, 4, 5] = np.nan
        data[7, 8:11, 9] = np.float32(-999.0)
        stream = srnsz.compress(data, 1e-3, "rel", fill_value=-999.0)
        assert srnsz.info(stream).format_version == "1.14" and "eb" in srnsz.info(stream).predictor_params
        np.save(HERE / f"golden_{name}_original.npy", data)
        (HERE / f"golden_{name}.srnsz").write_bytes(stream)
        np.save(HERE / f"golden_{name}_expected.npy", srnsz.decompress(stream))
        print(name, len(stream), "bytes")
        sys.exit(0)
    if name == "v1_15_wavelet":  # 1.15: the wavelet predictor, kept by the psnr mode at a low PSNR
        data = smooth_field((20, 30, 34), seed=7)
        stream = srnsz.compress(data, 30.0, "psnr")
        assert srnsz.info(stream).format_version == "1.15" and srnsz.info(stream).predictor == "wavelet"
        np.save(HERE / f"golden_{name}_original.npy", data)
        (HERE / f"golden_{name}.srnsz").write_bytes(stream)
        np.save(HERE / f"golden_{name}_expected.npy", srnsz.decompress(stream))
        print(name, len(stream), "bytes", srnsz.info(stream).predictor_params)
        sys.exit(0)
    if name == "v1_13_series":  # 1.13: mean_axis and code_order, chosen by the tuner
        data = series_field((32, 16, 24), seed=3)
        stream = srnsz.compress(data, 1e-2, "rel")
        assert srnsz.info(stream).format_version == "1.13"
        config = srnsz.info(stream).predictor_params["config"]
        assert config["code_order"][-1] == 0 and config["mean_axis"] == 0
        np.save(HERE / f"golden_{name}_original.npy", data)
        (HERE / f"golden_{name}.srnsz").write_bytes(stream)
        np.save(HERE / f"golden_{name}_expected.npy", srnsz.decompress(stream))
        print(name, len(stream), "bytes")
        sys.exit(0)
    if name == "v1_10_coords":
        data, meta = curvilinear_variable()
        stream = srnsz.compress(data, 1e-4, "rel", metadata=meta)
        assert srnsz.info(stream).format_version == "1.10"
        (HERE / f"golden_{name}.srnsz").write_bytes(stream)
        np.save(HERE / f"golden_{name}_expected.npy", srnsz.decompress(stream))
        coords = srnsz.api.variable_metadata(stream).coords
        np.save(HERE / f"golden_{name}_coords.npy", np.stack([c.values for c in coords]))
        print(name, len(stream), "bytes")
        sys.exit(0)
    if name == "hat":  # the network wins blocks on this field at rel 1e-3 (hat_tiny_bound, CPU, 2 threads)
        from srnsz.predictors.hat import HatPolicy

        data = smooth_field((40, 48, 56), seed=7)
        # sample_min_gain 1: the decision the stored stream was made with (test_golden does the same)
        stream = srnsz.compress(data, 1e-3, "rel", predictor="hat", model="hat_tiny_bound", device="cpu",
                                decoded_planes=False, policy=HatPolicy(sample_min_gain=1.0), **old_writer)
        assert srnsz.info(stream).predictor == "hat"
        (HERE / "golden_hat.srnsz").write_bytes(stream)
        np.save(HERE / "golden_hat_original.npy", data)
        np.save(HERE / "golden_hat_expected.npy", srnsz.decompress(stream))
        print(name, srnsz.info(stream).format_version, len(stream), "bytes")
        sys.exit(0)
    if name == "hat_v1_5":  # format 1.5: the shipped default network, also on the planes decoded within a level
        data = np.load(HERE / "golden_hat_original.npy")
        stream = srnsz.compress(data, 1e-3, "rel", predictor="hat", model="hat_nano_series", device="cpu",
                                **old_writer)
        assert srnsz.info(stream).predictor == "hat" and srnsz.info(stream).format_version == "1.5"
        (HERE / "golden_hat_v1_5.srnsz").write_bytes(stream)
        np.save(HERE / "golden_hat_v1_5_expected.npy", srnsz.decompress(stream))
        print(name, srnsz.info(stream).format_version, len(stream), "bytes")
        sys.exit(0)
    if name in ("hat_v1_9", "ae_v1_9", "hat_v1_16", "ae_v1_16"):  # networks in fixed point: the same bits anywhere
        version = name.split("_v")[1].replace("_", ".")
        if name.startswith("hat"):
            data = np.load(HERE / "golden_hat_original.npy")
            stream = srnsz.compress(data, 1e-3, "rel", predictor="hat")
        else:
            if name == "ae_v1_9":
                np.save(HERE / f"golden_{name}_original.npy", smooth_field((16, 24, 24), seed=1, noise=0.0))
            data = np.load(HERE / "golden_ae_v1_9_original.npy")  # both ae goldens on this field
            stream = srnsz.compress(data, 0.1, "rel", predictor="ae", compete_interp=False)
        made = srnsz.info(stream)
        assert made.predictor == name[:3].rstrip("_") and made.format_version == version
        (HERE / f"golden_{name}.srnsz").write_bytes(stream)
        np.save(HERE / f"golden_{name}_expected.npy", srnsz.decompress(stream))
        print(name, made.format_version, len(stream), "bytes", made.predictor_params.get("hat", made.predictor_params))
        sys.exit(0)
    # v1 (format 1.0) used a (12, 17, 23) field; later ones are larger so every coding method can win a level.
    data = smooth_field((12, 17, 23) if name == "v1" else (16, 25, 33), seed=7)
    data[0, 0, :3] = [np.nan, np.inf, -np.inf]
    options = {}
    bound = (1e-3, "rel")
    if name == "v1_3":  # 1.3: missing values (a detected 1e20 land, a declared -999)
        data[:, :9, :11] = np.float32(1e20)
        data[3, 20, 20:25] = -999.0
        options = {"fill_value": -999.0}
    if name == "v1_4":  # 1.4: the quintic spline (here in the psnr mode, with a dead zone)
        bound, options = (60.0, "psnr"), {"kind": "quintic", "round_bias": 0.1, "restoration": False,
                                              "row_deltas": False, "lone_slack": 0.0}
    if name == "v1_6":  # 1.6: a restoration filter (psnr mode)
        bound, options = (40.0, "psnr"), {"lone_slack": 0.0}  # psnr streams older than the lone codes: none dropped
    if name in ("v1_6_rows", "v1_7_rows"):  # codes coded as row differences (psnr mode, a vertical profile)
        data, bound, options = profile_field(), (90.0, "psnr"), {"lone_slack": 0.0}
    if name == "v1_7_lone":  # the psnr mode at a low rate, where dropping lone codes pays on this field
        data, bound = smooth_field((20, 30, 40), seed=3, noise=0.002), (40.0, "psnr")
    if name == "v1_8_fast":
        options = {"profile": "fast"}
    if name in ("v1_7", "v1_8_fast"):  # a small bound for long Exp-Golomb tails, missing values, escapes
        data[:, :9, :11] = np.float32(1e20)
        data[5, 10, 12] += 0.8 * np.ptp(data[:, 9:, 11:])  # a spike: its code escapes at this bound
        bound = (1e-6, "rel")
    if bound[1] == "psnr":  # written before the wavelet predictor competed in the psnr mode
        options = {"wavelet": False, **options}
    stream = srnsz.compress(data, *bound, **options, **old_writer)
    assert name != "v1_6" or srnsz.info(stream).restoration
    methods = coding_methods(read_container(stream).sections["CODE"])
    assert name != "v1_6_rows" or BINARISATION_1.row_delta_method in methods
    assert name != "v1_7_rows" or BINARISATION_2.row_delta_method in methods
    assert name != "v1_7" or BINARISATION_2.method in methods
    assert name != "v1_8_fast" or methods == {BINARISATION_3.method}
    assert name != "v1_7_lone" or stream != srnsz.compress(data, *bound, lone_slack=0.0)
    (HERE / f"golden_{name}.srnsz").write_bytes(stream)
    originals = {"v1": "golden_v1_original.npy", "v1_1": "golden_field.npy", "v1_2": "golden_field.npy"}
    np.save(HERE / originals.get(name, f"golden_{name}_original.npy"), data)
    np.save(HERE / f"golden_{name}_expected.npy", srnsz.decompress(stream))
    print(name, srnsz.info(stream).format_version, len(stream), "bytes")
