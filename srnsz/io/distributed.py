"""Compress a Zarr array's chunks in parallel on a dask.distributed cluster.

Each task reads one chunk of the source array and writes it to the target array, whose serializer is the
srnsz codec, so the compression runs on the workers. The same code runs serially (``client=None``), on a
``LocalCluster`` or on a real cluster (``Client("tcp://scheduler:8786")``); the workers must reach both stores
by the same path or URL (a shared file system or an object store). srnsz streams are deterministic, so every
chunk's bytes are the same whichever worker or schedule wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from srnsz.decomposition.tiling import chunk_keys
from srnsz.errors import InvalidInputError
from srnsz.io.codec import Srnsz


@dataclass(frozen=True)
class ZarrJob:
    """One store-to-store compression: paths (or URLs) and the codec settings."""

    source: str
    target: str
    eb: float
    mode: str = "abs"
    predictor: str = "interp"
    options: tuple[tuple[str, Any], ...] = ()


def _copy_chunk(job: ZarrJob, region: tuple[slice, ...]) -> int:
    import zarr

    from srnsz.io.codec import SrnszZarr3  # noqa: F401  (registers the codec with zarr in this worker)

    source = zarr.open_array(job.source, mode="r")
    target = zarr.open_array(job.target, mode="r+")
    block = source[region]
    target[region] = block  # the target's serializer (srnsz) compresses here, on the worker
    return int(block.nbytes)


def _source_array(source: str) -> Any:
    """The Zarr array at ``source``, or a clear error: a group (what xarray writes for a dataset) names its arrays."""
    import zarr

    try:
        return zarr.open_array(source, mode="r")
    except FileNotFoundError:
        raise InvalidInputError(f"source {source!r} does not exist") from None
    except (zarr.errors.NodeTypeValidationError, zarr.errors.ContainsGroupError):
        pass
    except Exception as exc:  # zarr raises many kinds for what is not a store
        raise InvalidInputError(f"source {source!r} is not a Zarr array ({exc})") from None
    try:
        names = sorted(zarr.open_group(source, mode="r").array_keys())
    except Exception:  # neither an array nor a group
        names = []
    if not names:
        raise InvalidInputError(f"source {source!r} is a Zarr group without arrays; give the path of an array")
    raise InvalidInputError(f"source {source!r} is a Zarr group (as xarray writes a dataset) holding arrays "
                            f"{', '.join(names)}; give one array's path, e.g. {source.rstrip('/')}/{names[0]}")


def compress_zarr(source: str, target: str, eb: float, mode: str = "abs", predictor: str = "interp",
                  client: Any = None, **options: Any) -> int:
    """Write a copy of the Zarr array at ``source`` to ``target`` (created, same shape/chunks/dtype) stored
    with the srnsz codec at bound ``eb`` (``abs`` by default: one bound for every chunk).

    client: a ``dask.distributed.Client`` to spread the chunks over its workers, or None for serial.
    Returns the number of original bytes written.
    """
    import zarr

    from srnsz.io.codec import SrnszZarr3

    Srnsz(eb, mode, predictor, **options)  # invalid settings fail here, not on a worker
    src = _source_array(source)
    try:
        zarr.create_array(target, shape=src.shape, chunks=src.chunks, dtype=src.dtype, fill_value=src.fill_value,
                          serializer=SrnszZarr3(eb=eb, mode=mode, predictor=predictor, options=options),
                          compressors=None, overwrite=False)
    except zarr.errors.ContainsArrayError:
        raise InvalidInputError(f"target {target!r} already holds a Zarr array; give a new path") from None
    except zarr.errors.ContainsGroupError:
        raise InvalidInputError(f"target {target!r} already holds a Zarr group; give a new path") from None
    job = ZarrJob(source, target, float(eb), mode, predictor, tuple(sorted(options.items())))
    regions = list(chunk_keys(src.shape, src.chunks))
    if client is None:
        return sum(_copy_chunk(job, r) for r in regions)
    futures = client.map(_copy_chunk, [job] * len(regions), regions, pure=False)
    return sum(client.gather(futures))
