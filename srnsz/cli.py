"""The ``srnsz`` command line: compress, decompress, info, eval, bench."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout, suppress
from pathlib import Path
from typing import Any

import numpy as np

from srnsz import api
from srnsz.bounds import MODES, ErrorBound
from srnsz.decomposition.grid import make_plan
from srnsz.errors import InvalidInputError, SrnszError
from srnsz.eval.peers import list_codecs
from srnsz.examples import example_field
from srnsz.io import chunked
from srnsz.io.cf import HDF5_SUFFIXES, CFField
from srnsz.io.fields import (
    RAW_DTYPES,
    VARIABLE_SUFFIXES,
    declared_rule,
    is_scaled,
    open_lazy,
    read_field,
    read_input,
    write_field,
)
from srnsz.io.outputs import refuse_existing, write_atomically
from srnsz.io.packed import compress_packed, float_scaling, reader_error, stored_bound
from srnsz.metrics import bit_rate, bound_held, quality
from srnsz.missing import MissingRule, find_missing
from srnsz.neural.runtime import FIXED_POINT_ARITHMETICS
from srnsz.parallel import available_cores, check_threads
from srnsz.predictors import PREDICTORS, list_predictors
from srnsz.predictors.hat import DEFAULT_MODEL
from srnsz.predictors.interp import CONFIG_KINDS, TUNE_MODES

RAW_HELP = ("raw binary input: element type; needs --shape. Raw files are little endian, C order "
            "(slowest axis first, as numpy), so a Fortran-order 128x64x41 field is --shape 41 64 128")


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """tqdm bar on stderr, shown only on a terminal."""
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="pt", unit_scale=True, disable=None, leave=False) as bar:
        yield bar.update


def _add_input(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="?", help=".npy, .h5/.nc (with --var), or raw binary with --dtype/--shape")
    p.add_argument("--var", help="variable to read from an HDF5/NetCDF input")
    p.add_argument("--dtype", choices=sorted(RAW_DTYPES), help=RAW_HELP)
    p.add_argument("--shape", type=int, nargs="+", metavar="N", help="raw input sizes, slowest axis first")
    p.add_argument("--example", action="store_true", help="use the built-in example field instead of a file")


def _add_bound(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eb", type=float, default=1e-3, help="error bound value (default 1e-3)")
    p.add_argument("--mode", choices=MODES, default="rel",
                   help="abs: data units; rel: fraction of the value range (default); psnr: target dB (the "
                        "configuration is tuned for bits at that PSNR; the stream states the pointwise bound it "
                        "holds); ssim: target mean SSIM, e.g. 0.999 (2D/3D, interp); "
                        "abs_and_rel: the smaller of --eb (abs) and --rel")
    p.add_argument("--rel", type=float, help="relative part of --mode abs_and_rel")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-psnr", type=float, metavar="DB",
                        help="the fewest bits keeping at least this PSNR (replaces --eb/--mode; for interp the "
                             "same as --mode psnr --eb DB, other predictors search the bound by whole compressions)")
    target.add_argument("--target-ssim", type=float, metavar="S",
                        help="the fewest bits keeping a mean SSIM of at least S, e.g. 0.999 (= --mode ssim --eb S; "
                             "2D and 3D fields, interp)")
    target.add_argument("--target-ratio", type=float, metavar="R",
                        help="search the smallest bound that reaches at least this compression ratio")
    p.add_argument("--fill-value", type=float, nargs="+", metavar="V",
                   help="values that mean 'no data' (besides NaN, Inf and a NetCDF/HDF5 variable's _FillValue/"
                        "missing_value): they come back exactly and never set the range of a rel bound")
    p.add_argument("--valid-range", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="values outside [MIN, MAX] are missing (default: the variable's valid_range/min/max)")
    p.add_argument("--no-fill-detection", action="store_true",
                   help="do not treat undeclared fill values (a huge or far-off repeated extreme, e.g. 1e20) as "
                        "missing")
    p.add_argument("--no-restoration", action="store_true",
                   help="psnr and ssim modes: no restoration filter in the stream (by default one is added where "
                        "it saves bits; the stream is then format 1.6 and its stated bound up to 1.5x the "
                        "quantizer's)")
    p.add_argument("--no-wavelet", action="store_true",
                   help="psnr and ssim modes: interpolation alone (by default the wavelet predictor's stream "
                        "competes and the smaller one at the target is kept; it is format 1.15)")
    p.add_argument("--predictor", choices=list_predictors(), help="default interp")
    p.add_argument("--profile", choices=list(api.PROFILES),
                   help="best (default): the best ratio; fast: interp without trial compressions and with a lighter "
                        "coder: about 4x faster to compress and 2x to decompress at 12-18%% lower ratio (format 1.8)")
    p.add_argument("--kind", choices=CONFIG_KINDS, help="spline of the interp predictor (default: tuned)")
    p.add_argument("--tune", choices=TUNE_MODES, help="interp tuning on sampled blocks (default fast; best also "
                   "tries level-wise bounds on a sample twice as large)")
    p.add_argument("--model", help="hat: weights name from pretrained/manifest.json or SRNSZ_WEIGHTS "
                                   f"(default {DEFAULT_MODEL}); several, comma-separated: the one that wins "
                                   "on a sample")
    p.add_argument("--hat-levels", type=_at_least_one, metavar="N",
                   help="hat: how many of the finest levels use the network (default 1; at most the field's levels)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="hat: where the network runs (default auto)")
    p.add_argument("--predictor-config", metavar="YAML",
                   help="predictor and options from a config file such as configs/predictor/hat.yaml "
                        "(keys: name and the predictor's options); command-line options override it")


def _at_least_one(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _check_hat_levels(options: dict[str, Any], shape: tuple[int, ...]) -> None:
    """--hat-levels must not exceed the levels of the field's decomposition (the network runs on the finest ones)."""
    if options.get("hat_levels") is None:
        return
    try:
        levels = make_plan(tuple(shape), int(options.get("anchor_stride", 0))).levels
    except (ValueError, TypeError):
        return  # the predictor refuses the anchor stride itself
    if options["hat_levels"] > levels:
        raise SrnszError(f"--hat-levels {options['hat_levels']}: a field of shape {tuple(shape)} has {levels} "
                         f"levels; give 1 to {levels}")


OPTION_FLAGS = {"kind": "kind", "tune": "tune", "model": "model", "hat_levels": "hat_levels", "device": "device",
                "profile": "profile"}


def _predictor_and_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    name, opts = "interp", {}
    if args.predictor_config:
        name, opts = _read_predictor_config(args.predictor_config)
    name = args.predictor or name
    if args.predictor_config:
        _check_config_options(args.predictor_config, name, opts)
    for attr, key in OPTION_FLAGS.items():
        if getattr(args, attr, None) is not None:
            opts[key] = getattr(args, attr)
    return name, opts


def _read_predictor_config(path: str) -> tuple[str, dict[str, Any]]:
    try:
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except ImportError:
        raise SrnszError("--predictor-config needs omegaconf (pip install hydra-core)") from None
    except Exception as exc:  # omegaconf raises many types for bad YAML
        raise SrnszError(f"cannot read predictor config {path!r}: {exc}") from None
    if not isinstance(cfg, dict) or "name" not in cfg:
        raise SrnszError(f"predictor config {path!r} must be a mapping with a 'name' key")
    name = str(cfg.pop("name"))
    cfg.pop("_target_", None)
    return name, cfg


# Keys of a predictor config that are not the predictor's own options: those the command line also takes as flags.
CONFIG_COMPRESS_KEYS = {"profile"}


def _check_config_options(path: str, name: str, options: dict[str, Any]) -> None:
    """Refuse a config key that is not an option of predictor ``name`` (e.g. api.compress's region, metadata or
    progress, which would reach it as the wrong objects), and a weights name that YAML read as a number."""
    if name not in PREDICTORS:
        return  # the unknown name is the clearer error, raised where the predictor is made
    allowed = PREDICTORS[name].options() | CONFIG_COMPRESS_KEYS
    foreign = sorted(set(options) - allowed, key=str)
    if foreign:
        raise InvalidInputError(f"predictor config {path!r}: {', '.join(map(repr, foreign))} "
                                f"{'is not an option' if len(foreign) == 1 else 'are not options'} of the {name} "
                                f"predictor; it takes {', '.join(sorted(allowed)) or 'none'}")
    if "model" in options and not isinstance(options["model"], str):
        raise InvalidInputError(f"predictor config {path!r}: model must be a weights name, got {options['model']!r} "
                                "(quote a name that YAML reads as a number)")
    if "threads" in options:  # --threads (its default: the cores available) replaces it: checked all the same
        try:
            check_threads(options["threads"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"predictor config {path!r}: {exc}") from None


def _load(args: argparse.Namespace) -> CFField:
    if args.example:
        return CFField(example_field(), MissingRule(), None)
    if args.input is None:
        raise SrnszError("give an input file or --example")
    return read_input(args.input, args.dtype, args.shape, args.var)


def _missing_options(args: argparse.Namespace, declared: MissingRule) -> dict[str, Any]:
    """The missing-value arguments of srnsz.compress: the file's declarations plus the command line's."""
    low, high = args.valid_range if args.valid_range else (declared.valid_min, declared.valid_max)
    return {"fill_value": [*declared.fill_values, *(args.fill_value or [])], "valid_range": (low, high),
            "detect_fills": not args.no_fill_detection}


def _missing_lines(record: dict[str, Any], size: int) -> list[str]:
    """What a stream's missing-value record says, for people: the points and the rule, then any suspects."""
    lines = []
    points = int(record.get("points", 0))
    if points:
        declared = [f"{v:g}" for v in record.get("fill_values", [])]
        if "valid_min" in record or "valid_max" in record:
            declared.append(f"outside [{record.get('valid_min', '-inf')}, {record.get('valid_max', 'inf')}]")
        detected = [f"{v:g}" for v in record.get("detected", [])]
        parts = ["NaN/Inf"] + (["declared " + ", ".join(declared)] if declared else [])
        parts += [f"undeclared fill {', '.join(detected)} (detected: a huge or far-off extreme; "
                  "--no-fill-detection keeps it as data)"] if detected else []
        lines.append(f"{points} points ({100 * points / size:.1f}%) come back exactly, left out of the bound's "
                     f"range: {'; '.join(parts)}")
    for value in record.get("suspects", []):
        lines.append(f"{value:g} repeats at the edge of the values and may be a fill value; it was kept as data "
                     f"(pass --fill-value {value:g} if it means 'no data')")
    return lines


def _report_missing(record: dict[str, Any], size: int) -> None:
    for line in _missing_lines(record, size):
        print(f"missing values: {line}", file=sys.stderr)


def _compress_field(source: CFField, args: argparse.Namespace, name: str, options: dict[str, Any]) -> bytes:
    data = source.data
    _check_hat_levels(options, data.shape)
    for note in source.notes:
        print(f"note: {note}", file=sys.stderr)
    options = {**options, **_missing_options(args, source.rule), "threads": args.threads}
    if args.no_restoration:
        options["restoration"] = False
    if args.no_wavelet:
        options["wavelet"] = False
    if source.meta is not None:
        options["metadata"] = source.meta
    packing = source.meta.packing if source.meta is not None else None
    if packing is not None and (_asks_target(args) or args.mode in ("psnr", "ssim")):
        raise SrnszError(f"{source.meta.name} is packed: it takes a bound (--eb with --mode abs, rel or abs_and_rel), "
                         "which is kept on the values re-packed into whole steps, not a quality or ratio target")
    if args.target_psnr is not None or args.target_ratio is not None:
        from srnsz.pipeline.targets import compress_to_target

        result = compress_to_target(data, psnr=args.target_psnr, ratio=args.target_ratio, predictor=name,
                                    **options)
        goal = f"PSNR >= {args.target_psnr} dB" if args.target_psnr is not None else f"ratio >= {args.target_ratio}"
        print(f"target {goal}: {'met' if result.met else 'NOT met (closest kept)'} with abs bound "
              f"{result.eb_abs:.6g}: PSNR {result.psnr_db:.2f} dB, ratio {result.ratio:.2f} ({result.trials} trials)",
              file=sys.stderr)
        return result.stream
    eb, mode, rel = (args.target_ssim, "ssim", None) if args.target_ssim is not None else (args.eb, args.mode,
                                                                                            args.rel)
    # (a packed variable's floats are its unpacked values: the packing is kept below)
    scaling = float_scaling(data.dtype, source.meta.attrs) if source.meta is not None and packing is None else None
    if scaling is not None and mode not in ("psnr", "ssim"):  # (quality modes: measured on the stored values)
        return _compress_scaled(source, ErrorBound(mode, eb, rel), scaling, name, options)
    with progress_bar(data.size, "compress") as update:
        if packing is None:
            return api.compress(data, eb, mode, name, rel=rel, progress=update, **options)
        # In whole packing steps, kept on the values readers unpack from the re-packed file (srnsz.io.packed).
        requested = ErrorBound(mode, eb, rel).resolve(data)  # unpacked: missing values are NaN
        packed = compress_packed(source, requested, lambda bound: api.compress(data, bound, "abs", name,
                                                                               progress=update, **options))
    if packed.eb != requested:
        why = (f"{packed.steps} whole packing steps, in the readers' arithmetic" if packed.steps
               else "under one packing step: the packed integers come back exactly")
        print(f"note: abs bound {requested:.6g} taken as {packed.eb:.6g} ({why})", file=sys.stderr)
    return packed.stream


def _compress_scaled(source: CFField, bound: ErrorBound, scaling: tuple[float, float], name: str,
                     options: dict[str, Any]) -> bytes:
    """A float variable that CF readers scale (srnsz.io.packed.float_scaling): its stored values under the abs bound
    that keeps the readers' values within ``bound``, checked on them before the stream is handed out."""
    data = source.data
    mask = find_missing(data, MissingRule.from_options(options)).mask
    requested, eb_stored = stored_bound(bound, data, mask, source.meta.attrs)
    with progress_bar(data.size, "compress") as update:
        stream = api.compress(data, eb_stored, "abs", name, progress=update, **options)
    valid = np.isfinite(data) if mask is None else np.isfinite(data) & ~mask
    if reader_error(data[valid], api.decompress(stream)[valid], source.meta.attrs) > requested:
        raise SrnszError(f"internal error: the scaled values of {source.meta.name!r} break the bound; please report "
                         "this")
    print(f"note: {source.meta.name} is scaled (scale_factor {scaling[0]:.6g}, add_offset {scaling[1]:.6g}): the bound "
          f"{requested:.6g} on the values CF readers see is kept as abs bound {eb_stored:.6g} on the stored values",
          file=sys.stderr)
    return stream


def cmd_compress(args: argparse.Namespace) -> None:
    if Path(args.output).suffix.lower() == ".zarr":
        _compress_dataset(args)
        return
    refuse_existing(args.output, args.force, [args.input])  # fail before the work, not after
    if args.chunk:
        _compress_chunked(args)
        return
    source = _load(args)
    data = source.data
    asked, options = _predictor_and_options(args)
    stream = _compress_field(source, args, asked, options)
    write_atomically(args.output, lambda tmp: tmp.write_bytes(stream), args.force)
    print(f"{data.nbytes} -> {len(stream)} bytes (ratio {data.nbytes / len(stream):.2f}) {args.output}")
    stream_info = api.info(stream)
    record = stream_info.missing
    if not record and not args.no_fill_detection:  # suspects alone are not written into the stream
        found = find_missing(data, MissingRule.of(**_missing_options(args, source.rule)))
        record = {"suspects": list(found.suspects)}
    _report_missing(record, data.size)
    stored = stream_info.predictor
    if stored not in (asked, "lossless", "wavelet"):  # the psnr mode's wavelet stream is its own choice
        print(f"note: the {asked} predictor stored a plain {stored} stream (its network did not apply to this field "
              "or did not pay for itself)", file=sys.stderr)


def _compress_dataset(args: argparse.Namespace) -> None:
    """Every floating-point variable of a NetCDF file into a Zarr store (srnsz.io.datasets)."""
    from tqdm import tqdm

    from srnsz.io.datasets import compress_dataset

    if args.input is None or Path(args.input).suffix.lower() not in VARIABLE_SUFFIXES or args.var:
        raise SrnszError("a .zarr output takes a whole NetCDF/HDF5 dataset: give a .nc/.h5 input and no --var")
    if _asks_target(args) or args.chunk:
        raise SrnszError("a .zarr output takes a bound (--eb/--mode), not a target or --chunk")
    if not Path(args.input).is_file():
        raise SrnszError(f"input file {args.input!r} does not exist")
    name, options = _predictor_and_options(args)
    with tqdm(desc="variables", unit="var", disable=None, leave=False) as bar:
        def report(plan: Any, done: int, total: int) -> None:
            bar.total = total
            bar.set_postfix_str(plan.name)
            bar.update(1)

        plans = compress_dataset(args.input, args.output, args.eb, args.mode, name, force=args.force,
                                 on_variable=report, **_missing_options(args, MissingRule()), **options)
    for plan in plans:
        scaled = f" ({plan.requested:.4g} on the scaled values)" if plan.requested not in (None, plan.eb_abs) else ""
        missing = f", {plan.missing_points} missing points restored exactly" if plan.missing_points else ""
        how = f"srnsz, abs bound {plan.eb_abs:.4g}{scaled}{missing}" if plan.lossy else "lossless"
        print(f"  {plan.name}: {how}")
    size = sum(p.stat().st_size for p in Path(args.output).rglob("*") if p.is_file())
    original = Path(args.input).stat().st_size
    print(f"{original} -> {size} bytes (ratio {original / size:.2f}) {args.output}: "
          f"{sum(p.lossy for p in plans)} variables compressed, {sum(not p.lossy for p in plans)} copied")


def _asks_target(args: argparse.Namespace) -> bool:
    """A target (PSNR, SSIM or ratio) instead of a bound."""
    return any(v is not None for v in (args.target_psnr, args.target_ssim, args.target_ratio))


def _compress_chunked(args: argparse.Namespace) -> None:
    if args.example or args.input is None:
        raise SrnszError("--chunk compresses a file: give an input file")
    if _asks_target(args):
        raise SrnszError("--chunk takes a bound (--eb/--mode), not a target")
    name, options = _predictor_and_options(args)
    if is_scaled(args.input, args.var, args.dtype, args.shape):  # chunk by chunk nothing checks the readers' values
        raise SrnszError(f"{args.var} is scaled by scale_factor / add_offset: compress it without --chunk, which "
                         "keeps the bound on the values CF readers see")
    options.update(_missing_options(args, declared_rule(args.input, args.var, args.dtype, args.shape)))
    with open_lazy(args.input, args.dtype, args.shape, args.var) as array:
        _check_hat_levels(options, tuple(min(c, n) for c, n in zip(args.chunk, array.shape)))
        with progress_bar(int(np.prod(array.shape)), "compress") as update:
            def write(tmp: Path) -> None:
                chunked.compress_file(array, tmp, eb=args.eb, mode=args.mode, chunk=tuple(args.chunk),
                                      predictor=name, rel=args.rel, progress=update, threads=args.threads,
                                      **options)

            size = write_atomically(args.output, write, args.force)
        original = int(np.prod(array.shape)) * np.dtype(array.dtype).itemsize
    print(f"{original} -> {size} bytes (ratio {original / size:.2f}) {args.output}, chunks {tuple(args.chunk)}")


def _decompress_chunked(args: argparse.Namespace) -> None:
    suffix = Path(args.output).suffix.lower()
    with open(args.input, "rb") as src:
        index = chunked.read_index(src)
        with progress_bar(int(np.prod(index.shape)), "decompress") as update:
            if suffix not in (".npy", ".h5", ".hdf5", ".he5"):
                write_field(args.output, chunked.decompress_chunked(src, None, update, args.threads), args.force,
                            args.var)
            else:  # chunk by chunk into the output file: memory stays a few chunks
                def write(tmp: Path) -> None:
                    if suffix == ".npy":
                        out = np.lib.format.open_memmap(tmp, "w+", index.dtype, index.shape)
                        chunked.decompress_chunked(src, out, update, args.threads)
                        out.flush()
                        return
                    import h5py

                    with h5py.File(tmp, "w") as h5:
                        dataset = h5.create_dataset(args.var or "data", index.shape, index.dtype,
                                                    chunks=index.chunk if np.prod(index.shape) > 1 else None)
                        chunked.decompress_chunked(src, dataset, update, args.threads)

                write_atomically(args.output, write, args.force)
    print(f"{args.output}: {index.dtype} {index.shape} from {len(index.spans)} chunks")


def _read_stream(path: str) -> bytes:
    _check_input_file(path)
    return Path(path).read_bytes()


def _check_input_file(path: str) -> None:
    if Path(path).is_dir():
        raise SrnszError(f"input {path!r} is a directory; give a stream file (a .zarr store decompresses to .nc)")
    if not Path(path).is_file():
        raise SrnszError(f"input file {path!r} does not exist")


def cmd_decompress(args: argparse.Namespace) -> None:
    refuse_existing(args.output, args.force, [args.input])
    if Path(args.input).is_dir():
        from srnsz.io.datasets import decompress_dataset

        if Path(args.output).suffix.lower() not in (".nc", ".nc4"):
            raise SrnszError("a Zarr store decompresses to a NetCDF file: give an -o ending in .nc")
        written = decompress_dataset(args.input, args.output, force=args.force)
        if written.note:
            print(f"note: {written.note}", file=sys.stderr)
        print(f"{args.output}: {written.format}, {len(written.variables)} variables ({', '.join(written.variables)})")
        return
    if _is_chunked_file(args.input):
        _decompress_chunked(args)
        return
    stream = _read_stream(args.input)
    shape = api.info(stream).shape
    with progress_bar(int(np.prod(shape)), "decompress") as update:
        data = api.decompress(stream, progress=update, device=args.device, threads=args.threads)
    meta = api.variable_metadata(stream)
    note = write_field(args.output, data, args.force, args.var, meta)
    if note:
        print(f"note: {note}", file=sys.stderr)
    suffix = Path(args.output).suffix.lower()
    restored = "" if meta is None or suffix not in VARIABLE_SUFFIXES else \
        f" (dataset {args.var or meta.name}, {len(meta.attrs)} attributes)" if suffix in HDF5_SUFFIXES else \
        f" (variable {args.var or meta.name}{list(meta.dims)}, {len(meta.attrs)} attributes, " \
        f"{len(meta.coords)} coordinate variables)"
    print(f"{args.output}: {data.dtype} {data.shape}{restored}")


def _is_chunked_file(path: str) -> bool:
    _check_input_file(path)
    with open(path, "rb") as f:
        return chunked.is_chunked(f.read(16))


def _portability(inference: dict) -> str:
    """Where a stream's network predictions can be reproduced, from its recorded inference settings."""
    arithmetic = FIXED_POINT_ARITHMETICS.get(inference.get("arithmetic"))
    if arithmetic is not None:
        return f"fixed-point inference ({arithmetic.name}): {arithmetic.portability} (needs these weights)"
    return (f"float32 inference: decodes only on {inference.get('device')!r} with {inference.get('threads')} threads, "
            "the same torch and the kind of CPU that made it (and these weights)")


def cmd_info(args: argparse.Namespace) -> None:
    if _is_chunked_file(args.input):
        with open(args.input, "rb") as src:
            index = chunked.read_index(src)
            first = api.info(chunked.chunk_stream(src, index, 0))
        size = Path(args.input).stat().st_size
        print(f"chunked stream : {len(index.spans)} chunks of {index.chunk}, each decodable alone")
        print(f"shape, dtype   : {index.shape} {index.dtype}")
        print(f"error bound    : {index.error_bound}")
        print(f"predictor      : {first.predictor} (chunk 0)")
        print(f"size           : {size} bytes, ratio {int(np.prod(index.shape)) * index.dtype.itemsize / size:.2f}")
        return
    i = api.info(_read_stream(args.input))
    print(f"format version : {i.format_version} ({i.created_by})")
    print(f"shape, dtype   : {i.shape} {i.dtype}")
    print(f"error bound    : {i.error_bound}")
    print(f"predictor      : {i.predictor} {i.predictor_params.get('config', '')}")
    if i.predictor == "wavelet":
        print(f"wavelet        : levels per axis {i.predictor_params.get('levels')}, step "
              f"{i.predictor_params.get('step')}; the bound above is its largest error (it holds none of its own)")
    if i.restoration:
        print("restoration    : a least-squares filter run on the reconstruction (its clip is in the bound)")
    hat = i.predictor_params.get("hat")
    if isinstance(hat, dict) and "weights" in hat:
        inference = hat.get("inference", {})
        planes = ", also on the planes decoded within a level" if hat.get("decoded_planes") is True else ""
        print(f"network        : {hat['weights']} (sha256 {str(hat.get('sha256', ''))[:16]}...), blocks "
              f"{hat.get('blocks_hat')}/{hat.get('blocks_total')}{planes}; {_portability(inference)}")
    elif i.predictor == "ae" and "weights" in i.predictor_params:
        params = i.predictor_params
        print(f"network        : {params['weights']} (sha256 {str(params.get('sha256', ''))[:16]}...), blocks "
              f"{params.get('blocks', {}).get('ae')} of the autoencoder; {_portability(params)}")
    print(f"size           : {i.compressed_bytes} bytes, ratio {i.ratio:.2f}")
    for line in _missing_lines(i.missing, int(np.prod(i.shape))):
        print(f"missing values : {line}")
    meta = api.variable_metadata(_read_stream(args.input))
    if meta is not None:
        packed = f", packed {meta.packing}" if meta.packing else ""
        print(f"variable       : {meta.name}{list(meta.dims)} from {meta.file_format}, {len(meta.attrs)} attributes, "
              f"coordinates {[c.name for c in meta.coords]}{packed}")


def cmd_eval(args: argparse.Namespace) -> None:
    if args.plot:
        from srnsz.eval.plots import require_matplotlib

        refuse_existing(args.plot, args.force, [args.input])  # fail before the work, not after
        require_matplotlib()
    source = _load(args)
    data = source.data
    t0 = time.perf_counter()
    stream = _compress_field(source, args, *_predictor_and_options(args))
    t1 = time.perf_counter()
    recon = api.decompress(stream, threads=args.threads)
    t2 = time.perf_counter()
    mask = find_missing(data, MissingRule.of(**_missing_options(args, source.rule))).mask
    _report_missing(api.info(stream).missing, data.size)
    q = quality(data, recon, None if mask is None else ~mask)
    eb = api.info(stream).error_bound["abs"]
    mb = data.nbytes / 1e6
    print(f"field              : {data.dtype} {data.shape}")
    print(f"compression ratio  : {data.nbytes / len(stream):.2f}")
    print(f"bit rate           : {bit_rate(len(stream), data.size):.4f} bits/value")
    print(f"PSNR               : {q.psnr_db:.2f} dB")
    print(f"NRMSE              : {q.nrmse:.3e}")
    print(f"max abs error      : {q.max_abs_error:.6g} (bound {eb:.6g})")
    print(f"max error / eb     : {q.max_abs_error / eb if eb else 0.0:.4f}")
    print(f"bound held         : {bound_held(data, recon, eb)}")
    print(f"compress           : {mb / (t1 - t0):.1f} MB/s")
    print(f"decompress         : {mb / (t2 - t1):.1f} MB/s")
    print(f"SSIM, Pearson      : {q.ssim:.5f}, {q.pearson:.6f}")
    print(f"error lag-1 autocorrelation: {q.error_autocorrelation:.4f}")
    if args.plot:
        from srnsz.eval.plots import side_by_side

        title = (f"{args.input or 'example'}: eb {eb:.3g}, ratio {data.nbytes / len(stream):.1f}, "
                 f"PSNR {q.psnr_db:.1f} dB")
        write_atomically(args.plot, lambda tmp: side_by_side(data, recon, eb, tmp, title), args.force)
        print(f"plot               : {args.plot}")


def cmd_bench(args: argparse.Namespace) -> None:
    from srnsz.eval import bench
    from srnsz.eval.plots import error_maps, rate_distortion, require_matplotlib

    out = Path(args.out)
    inputs = [(Path(p).stem, p) for p in args.inputs] or [("example", None)]
    planned = [f"results.{suffix}" for suffix in ("csv", "json", "md")]
    if not args.no_plots:
        planned += ["rate_distortion.png", *(f"errors_{name}.png" for name, _ in inputs)]
    existing = [name for name in planned if (out / name).exists()]
    if existing and not args.force:
        raise SrnszError(f"{out} holds {', '.join(existing)}; use --force to overwrite or --out elsewhere")
    for _, path in inputs:  # every input checked before anything is written or reported
        if path is not None:
            with open_lazy(path, var=args.var) as array:
                try:
                    api.check_field(array.dtype, tuple(array.shape))
                except SrnszError as exc:
                    raise SrnszError(f"{path}: {exc}") from None
    if not args.no_plots:
        require_matplotlib()
    codecs, skipped = bench.available_codecs(args.codecs)
    for message in skipped:
        print(f"skipped {message}", file=sys.stderr)
    if not codecs:
        raise SrnszError("no codec can run; install the peers with pip install -e '.[peers]'")
    if out.exists() and not out.is_dir():
        raise SrnszError(f"--out {str(out)!r} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, path in inputs:
        data = example_field() if path is None else read_field(path, var=args.var)
        recons: dict[str, np.ndarray] = {}

        def keep(codec: str, bound: float, recon: np.ndarray, recons=recons) -> None:
            if bound == max(args.eb):
                recons[codec] = recon

        new = bench.bench_field(name, data, args.eb, codecs, args.mode, args.repeat,
                                MissingRule.of(args.fill_value), keep)
        rows += new
        for r in new:
            if r.error:
                print(f"{r.field:28s} {r.eb_rel:8.0e} {r.codec:14s} FAILED {r.error}", flush=True)
                continue
            print(f"{r.field:28s} {r.eb_rel:8.0e} {r.codec:14s} CR {r.ratio:9.2f}  PSNR {r.psnr_db:7.2f}  "
                  f"max/eb {r.max_err_over_eb:.4f}  {'held' if r.bound_held else 'VIOLATED'}  "
                  f"{r.compress_mb_s:7.1f} / {r.decompress_mb_s:7.1f} MB/s", flush=True)
        if not args.no_plots and recons:
            largest_row = max(new, key=lambda r: r.eb_abs)
            error_maps(data, recons, largest_row.eb_abs, out / f"errors_{name}.png",
                       f"{name}: error of the middle slice at rel eb {largest_row.eb_rel:.0e}")
    written = bench.write_results(rows, out)
    if not args.no_plots:
        written.append(rate_distortion(rows, out / "rate_distortion.png"))
    print(bench.summary(rows))
    print("wrote " + ", ".join(str(p) for p in written))


def _add_threads(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--threads", type=int, default=available_cores(), metavar="N",
                   help=f"{what}; default: the cores available ({available_cores()} here). Streams are the same "
                        "bytes for every count")


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]  # exits, as argparse's does
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``srnsz`` argument parser: one subparser per command (compress, decompress, info, eval, bench), each
    with its function as ``func``."""
    parser = Parser(prog="srnsz", description="Error-bounded lossy compression of float arrays.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compress", help="compress a field to a .srnsz stream")
    _add_input(c)
    c.add_argument("-o", "--output", required=True, help="output stream file")
    c.add_argument("--force", action="store_true", help="overwrite an existing output")
    c.add_argument("--chunk", type=int, nargs="+", metavar="N",
                   help="compress chunk by chunk (block sizes, slowest axis first): memory stays a few chunks "
                        "whatever the input size, and each chunk decodes alone")
    _add_threads(c, "cores to compress on: the parts of a large field (worker processes), the chunks of --chunk, "
                    "the code tables of one stream, a network's inference")
    _add_bound(c)
    c.set_defaults(func=cmd_compress)
    d = sub.add_parser("decompress", help="decompress a stream to .npy, .h5, .nc (or raw binary for other suffixes)")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True,
                   help="output .npy, .h5/.hdf5 (dataset --var), .nc (NetCDF variable --var); else raw little endian")
    d.add_argument("--var", help="variable name in an .h5/.nc output (default data)")
    d.add_argument("--force", action="store_true", help="overwrite an existing output")
    _add_threads(d, "cores to decode on: the parts of a large field, the chunks of a chunked stream (threads), a "
                    "network's inference")
    d.add_argument("--device", default="auto",
                   help="where a stream's networks run: auto (CUDA when there is a GPU), cpu, cuda[:n]; every choice "
                        "decodes the same bits (streams of format 1.16 on; `srnsz info` says where others decode)")
    d.set_defaults(func=cmd_decompress)
    i = sub.add_parser("info", help="describe a stream")
    i.add_argument("input")
    i.set_defaults(func=cmd_info)
    e = sub.add_parser("eval", help="compress and decompress in memory and report ratio, error and speed")
    _add_input(e)
    _add_bound(e)
    _add_threads(e, "cores to compress and decompress on (see compress --threads)")
    e.add_argument("--plot", metavar="PNG", help="write original, reconstruction and error of the middle slice")
    e.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    e.set_defaults(func=cmd_eval)
    b = sub.add_parser("bench", help="run srnsz and the installed peers at the same bounds; table, CSV/JSON, plots")
    b.add_argument("inputs", nargs="*", help=".npy/.h5/.nc fields (default: the built-in example)")
    b.add_argument("--var", help="variable to read from HDF5/NetCDF inputs")
    b.add_argument("--eb", type=float, nargs="+", default=[1e-2, 1e-3, 1e-4], help="bounds (default 1e-2 1e-3 1e-4)")
    b.add_argument("--mode", choices=["rel", "abs"], default="rel",
                   help="rel: fraction of the range of the valid values (default); abs: data units")
    b.add_argument("--codecs", nargs="+", choices=[*list_codecs(), "all"], metavar="NAME",
                   help="codecs to run (default all installed): " + ", ".join(list_codecs()))
    b.add_argument("--repeat", type=int, default=1, help="time each run this many times, keep the best")
    b.add_argument("--fill-value", type=float, nargs="+", metavar="V",
                   help="fill values (besides NaN, Inf and detected undeclared fills such as 1e20), left out of "
                        "ranges and metrics")
    b.add_argument("--out", default="bench-results", help="output folder (default bench-results)")
    b.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    b.add_argument("--force", action="store_true", help="overwrite results in --out")
    b.set_defaults(func=cmd_bench)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what batch schedulers and ``kill`` send), raised in the main thread so that it unwinds like Ctrl-C:
    worker processes stopped, temporary files removed."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within: SIGTERM raises Terminated (main thread only; the handler before is put back after). A worker process
    forked meanwhile inherits the handler until it sets its own: there the signal keeps its default action (the
    process ends), so that it never unwinds the parent's work in the child."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def terminated(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


NEGATIVE_EXPONENT = re.compile(r"-(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _plain_negative_numbers(argv: list[str]) -> list[str]:
    """``argv`` with negative numbers in exponent notation (``-1e-3``) written out (``-0.001``, the same float):
    argparse takes only those for option values, and read ``--eb -1e-3`` as a missing value and an unknown flag."""
    return [np.format_float_positional(float(a), trim="-") if NEGATIVE_EXPONENT.fullmatch(a) else a for a in argv]


def _writes_stdout(args: argparse.Namespace) -> bool:
    """Whether the command's output (``-o``) is the file this process's stdout writes to."""
    output = getattr(args, "output", None)
    if output is None:
        return False
    try:
        out, std = os.stat(output), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no such output yet, or stdout is not a file (a test's capture)
        return False
    return (out.st_dev, out.st_ino) == (std.st_dev, std.st_ino)


def main(argv: list[str] | None = None) -> int:
    """Runs the ``srnsz`` command with ``argv`` (default: the process's arguments) and returns its exit status: 0
    done, 1 an error (one line on stderr), 2 a usage error, 130 interrupted, 141 the reader of stdout went away,
    143 terminated (SIGTERM)."""
    parser = build_parser()
    args = parser.parse_args(_plain_negative_numbers(sys.argv[1:] if argv is None else list(argv)))
    if getattr(args, "rel", None) is not None and getattr(args, "mode", None) != "abs_and_rel":
        # `--rel 0.01` reads like "a relative bound of 0.01"; ignoring it would leave the default 1e-3 in place.
        parser.error(f"--rel is the relative part of --mode abs_and_rel; for a relative bound of {args.rel:g} give "
                     f"--eb {args.rel:g} (--mode rel is the default)")
    try:
        # With `-o /dev/stdout` the output is stdout: the reports go to stderr so that they do not mix into it.
        with _sigterm_as_interrupt(), redirect_stdout(sys.stderr) if _writes_stdout(args) else nullcontext():
            args.func(args)
    except BrokenPipeError:
        # The reader went away (`srnsz info x | head`): stop quietly, with the status of a process killed by
        # SIGPIPE, and point stdout at /dev/null so the interpreter's final flush does not complain.
        with suppress(AttributeError, OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (SrnszError, OSError) as exc:
        print(f"srnsz: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print("srnsz: terminated", file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports a process the signal stopped
    except KeyboardInterrupt:
        print("srnsz: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
