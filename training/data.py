"""Training data: fields from files, 2D patches for super-resolution and blocks for the autoencoder.

Split by file: `val_files` are never sampled for training. With no `val_files`, the last `holdout` fraction of
every training field along its longest axis is held out instead (one-field runs on a user's data).
Missing values (srnsz.missing's rule, as the compressor sees them) and values at least `fill_threshold` in
magnitude never enter a sample.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srnsz.errors import InvalidInputError
from srnsz.io.fields import read_input
from srnsz.missing import find_missing


@dataclass(frozen=True)
class FieldSpec:
    """Where one field lives: a .npy, an HDF5/NetCDF variable, or raw binary with dtype ('f32'|'f64') and shape."""

    path: str
    var: str | None = None
    dtype: str | None = None
    shape: tuple[int, ...] | None = None


def _spec(entry: str | dict | FieldSpec, data_dir: str) -> FieldSpec:
    if isinstance(entry, FieldSpec):
        return entry
    if isinstance(entry, str):
        return FieldSpec(str(Path(data_dir) / entry))
    entry = dict(entry)
    shape = tuple(entry.pop("shape")) if entry.get("shape") is not None else None
    return FieldSpec(str(Path(data_dir) / entry.pop("path")), shape=shape, **entry)


def load_field(spec: FieldSpec) -> np.ndarray:
    """The field as float64, its missing values NaN: srnsz's own rule (srnsz.missing: NaN/Inf, the fills and
    valid range a NetCDF/HDF5 variable declares, undeclared fills such as 1e20), so that no sample holds one."""
    source = read_input(spec.path, spec.dtype, list(spec.shape) if spec.shape else None, spec.var)
    dtype = np.asarray(source.data).dtype
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise InvalidInputError(f"{spec.path}: training takes float32 or float64 fields, as srnsz compresses, got "
                                f"dtype {dtype}")
    data = np.asarray(source.data, dtype=np.float64)
    mask = find_missing(source.data, source.rule).mask
    if mask is not None:
        data[mask] = np.nan
    return data


def fingerprint(field: np.ndarray) -> str:
    """sha256 of a loaded field (its shape and float64 values, missing ones NaN): what training reads from a file,
    so a file rewritten at the same path with other values is other data. The whole field, not samples of it: a
    change anywhere changes what training sees, and hashing (about a second per GB) costs less than reading and
    converting the values did; what training does not read (other variables of a NetCDF/HDF5 file) is left out."""
    digest = hashlib.sha256(repr(field.shape).encode())
    digest.update(np.ascontiguousarray(field, dtype=np.float64).data)
    return digest.hexdigest()


def planes(field: np.ndarray) -> list[np.ndarray]:
    """2D views of a field: the field itself if 2D, every slice along every axis if 3D, none otherwise."""
    if field.ndim == 2:
        return [field]
    if field.ndim == 3:
        return [np.moveaxis(field, axis, 0)[i] for axis in range(3) for i in range(field.shape[axis])]
    return []


def _valid(x: np.ndarray, fill_threshold: float) -> bool:
    return bool(np.all(np.isfinite(x)) and np.all(np.abs(x) < fill_threshold))


def _split(fields: list[np.ndarray], holdout: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    train, val = [], []
    for f in fields:
        axis = int(np.argmax(f.shape))
        cut = max(1, int(round(f.shape[axis] * (1 - holdout))))
        train.append(np.moveaxis(np.moveaxis(f, axis, 0)[:cut], 0, axis))
        val.append(np.moveaxis(np.moveaxis(f, axis, 0)[cut:], 0, axis))
    return train, val


class _FieldData:
    """Loads train/val fields and keeps a fixed validation set."""

    def __init__(self, train_files: list, val_files: list | None, data_dir: str, holdout: float,
                 fill_threshold: float, val_samples: int, seed: int) -> None:
        if not train_files:
            raise InvalidInputError("data.train_files is empty: give at least one field")
        self.fill_threshold = fill_threshold
        self.data_dir = data_dir
        self.train_specs = [_spec(e, data_dir) for e in train_files]
        self.val_specs = [_spec(e, data_dir) for e in (val_files or [])]
        train = [load_field(s) for s in self.train_specs]
        val = [load_field(s) for s in self.val_specs]
        self._fingerprints = {"train": [fingerprint(f) for f in train], "val": [fingerprint(f) for f in val]}
        if not self.val_specs:
            train, val = _split(train, holdout)
        self.train_fields, self.val_fields = train, val
        self.val_samples, self.seed = val_samples, seed

    def describe(self) -> dict:
        """What the manifest records about the data."""
        return {"train": [self._recorded(s) for s in self.train_specs],
                "val": [self._recorded(s) for s in self.val_specs] or "last part of each training field"}

    def fingerprint(self) -> dict[str, list[str]]:
        """{'train': [...], 'val': [...]}: the :func:`fingerprint` of each field, in the order of describe()."""
        return self._fingerprints

    def _recorded(self, spec: FieldSpec) -> str:
        """A field's path as the manifest records it: relative to the data folder when inside it (so
        timeseries/grayscott_A_t1000_64.npy keeps its folder), else as given."""
        path = Path(spec.path)
        try:
            return path.relative_to(self.data_dir).as_posix()
        except ValueError:
            return str(path)


def reconstructed(field: np.ndarray, rel: float) -> tuple[np.ndarray, float]:
    """(``field`` after srnsz compression within ``rel`` x its value range (the interp predictor) and
    decompression, the absolute bound the stream holds): what the coarse levels look like when the network is
    asked for the finest one, and the bound it is then given."""
    import srnsz

    stream = srnsz.compress(field, rel, "rel")
    return (np.asarray(srnsz.decompress(stream), dtype=np.float64),
            float(srnsz.info(stream).error_bound["abs"]))


def _planes_beside(original: np.ndarray, given: np.ndarray, step: int
                   ) -> list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """Every ``step``-th plane along every axis of a 3D field: (original plane, given plane, (the given planes two
    before and two after: its neighbours on the coarse lattice, the plane itself where there is none))."""
    out = []
    for axis in range(3):
        o, g = np.moveaxis(original, axis, 0), np.moveaxis(given, axis, 0)
        n = o.shape[0]
        for i in range(0, n, step):
            out.append((o[i], g[i], (g[i - 2 if i >= 2 else i], g[i + 2 if i + 2 < n else i])))
    return out


@dataclass(frozen=True)
class _Plane:
    """A 2D plane to cut patches from: the original values, the values the network is given (the original, or
    srnsz's reconstruction at a bound), that bound in data units, and the step patch corners move by (2 where the
    network input must sit on the compressor's coarse lattice)."""

    original: np.ndarray
    given: np.ndarray
    eb: float
    stride: int
    beside: tuple[np.ndarray, np.ndarray] | None = None  # the given planes 2 before / after (3D), for context


class SuperResolutionPatches(_FieldData):
    """Random (lr, hr, bound) triples: hr a (patch, patch) window of a 2D plane, lr its points [::2, ::2], both
    scaled with the min/max of lr (what the compressor knows) so lr is in [0, 1]; bound = lr's error bound over
    that span (0 for clean inputs).

    What lr holds: the original values (default); with `input_noise` > 0, those plus uniform noise of that size
    (relative to lr's span); with `input_bounds` (relative bounds, e.g. [1e-2, 1e-3]), srnsz's own reconstruction
    of the field at one of those bounds, picked per patch -- exactly what the network sees when compressing: then
    3D fields give only their even planes and patches start at even points (the coarse lattice), and a window is
    only transposed (a plain mirror flip would move lr off the lattice); the validation set is drawn the same way.
    `lattice_flips` adds, to the training patches only, mirror flips along each axis with probability 1/2 that keep lr
    on the lattice: the flipped window starts one point later (rows i+p .. i+1 of the plane, so its even rows are the
    plane's even rows). `sign_flips` negates the field of a training patch with probability 1/2 (lr, hr and context
    become 1 minus themselves after the scaling).

    With `context_planes`, batches also hold 'context' (B, 2, p/2, p/2): in 3D fields the given planes two points
    before and after the patch's plane (the neighbouring planes of the coarse lattice; the plane itself at an edge),
    in 2D the patch itself twice, scaled like lr -- what :func:`srnsz.neural.runtime.upsample_planes` gives."""

    def __init__(self, train_files: list, val_files: list | None = None, data_dir: str = ".", patch_size: int = 64,
                 input_noise: float = 0.0, input_bounds: list[float] | None = None, holdout: float = 0.2,
                 fill_threshold: float = 1e19, val_samples: int = 256, seed: int = 0,
                 context_planes: bool = False, lattice_flips: bool = False, sign_flips: bool = False) -> None:
        if patch_size < 4 or patch_size % 2:
            raise InvalidInputError(f"patch_size must be even and >= 4, got {patch_size}")
        bounds = [float(b) for b in (input_bounds or [])]
        if any(not 0 < b < 1 for b in bounds):
            raise InvalidInputError(f"input_bounds are relative bounds in (0, 1), got {bounds}")
        if bounds and input_noise:
            raise InvalidInputError("give input_noise or input_bounds, not both")
        super().__init__(train_files, val_files, data_dir, holdout, fill_threshold, val_samples, seed)
        self.patch_size, self.input_noise, self.input_bounds = patch_size, input_noise, bounds
        self.context_planes, self.lattice_flips, self.sign_flips = context_planes, bool(lattice_flips), bool(sign_flips)
        self.train_planes = self._usable(self.train_fields)
        self.val_planes = self._usable(self.val_fields)
        if not self.train_planes:
            raise InvalidInputError(f"no 2D plane of the training fields is at least {patch_size}x{patch_size}")
        if not self.val_planes:
            raise InvalidInputError(f"no 2D plane of the validation fields is at least {patch_size}x{patch_size}: "
                                    "give val_files, a larger holdout or a smaller patch_size")
        self._validation = self._draw(self.val_planes, val_samples, np.random.default_rng(seed + 7919), noise=0.0)

    def describe(self) -> dict:
        """What the manifest records about the data, with how the network inputs were made."""
        inputs = ({"srnsz_bounds": self.input_bounds} if self.input_bounds
                  else {"noise": self.input_noise} if self.input_noise else "clean")
        described = {**super().describe(), "inputs": inputs}
        for option in ("context_planes", "lattice_flips", "sign_flips"):
            if getattr(self, option):
                described[option] = True
        return described

    def _usable(self, fields: list[np.ndarray]) -> list[_Plane]:
        out = []
        for f in fields:
            if not self.input_bounds:
                candidates = ([_Plane(o, g, 0.0, 1, b) for o, g, b in _planes_beside(f, f, 1)] if f.ndim == 3
                              else [_Plane(p, p, 0.0, 1) for p in planes(f)])
                out += [c for c in candidates if min(c.original.shape) >= self.patch_size]
                continue
            for rel in self.input_bounds:
                given, eb = reconstructed(f, rel)
                candidates = ([_Plane(o, g, eb, 2, b) for o, g, b in _planes_beside(f, given, 2)] if f.ndim == 3
                              else [_Plane(f, given, eb, 2)] if f.ndim == 2 else [])
                out += [c for c in candidates if min(c.original.shape) >= self.patch_size]
        return out

    def _draw(self, pool: list[_Plane], count: int, rng: np.random.Generator, noise: float,
              augmented: bool = False) -> dict:
        """``count`` patches from ``pool``; ``augmented``: with the training-only flips this data set was asked for."""
        size = self.patch_size
        weights = np.array([(p.original.shape[0] - size + 1) * (p.original.shape[1] - size + 1) for p in pool],
                           dtype=np.float64)
        lrs, hrs, bounds, contexts = [], [], [], []
        attempts = 0
        while len(hrs) < count:
            attempts += 1
            if attempts > 50 * count:
                raise InvalidInputError("could not find enough patches free of fill values / NaN")
            plane = pool[rng.choice(len(pool), p=weights / weights.sum())]
            n0, n1 = plane.original.shape
            # a lattice flip needs one point more along its axis (drawn only where asked: the draws stay as before)
            flip0, flip1 = ((plane.stride == 2 and n > size and rng.random() < 0.5)
                            if augmented and self.lattice_flips else False for n in (n0, n1))
            i = plane.stride * rng.integers(0, (n0 - size - flip0) // plane.stride + 1)
            j = plane.stride * rng.integers(0, (n1 - size - flip1) // plane.stride + 1)
            rows = slice(i + size, i, -1) if flip0 else slice(i, i + size)
            cols = slice(j + size, j, -1) if flip1 else slice(j, j + size)
            hr = plane.original[rows, cols]
            lr = plane.given[rows, cols][::2, ::2]
            # Context windows at full resolution, so that they follow the flips of hr / lr exactly.
            beside = [b[rows, cols] for b in plane.beside] if self.context_planes and plane.beside else None
            if plane.stride == 1:
                if rng.random() < 0.5:
                    hr, lr = hr[::-1], hr[::-1][::2, ::2]
                    beside = beside and [b[::-1] for b in beside]
                if rng.random() < 0.5:
                    hr, lr = hr[:, ::-1], hr[:, ::-1][::2, ::2]
                    beside = beside and [b[:, ::-1] for b in beside]
            elif rng.random() < 0.5:  # a transpose keeps lr on the lattice
                hr, lr = hr.T, lr.T
                beside = beside and [b.T for b in beside]
            if augmented and self.sign_flips and rng.random() < 0.5:
                hr, lr = -hr, -lr
                beside = beside and [-b for b in beside]
            context = [b[::2, ::2] for b in beside] if beside else [lr, lr]
            if not (_valid(hr, self.fill_threshold) and _valid(lr, self.fill_threshold)
                    and (not self.context_planes or all(_valid(c, self.fill_threshold) for c in context))):
                continue
            lo, hi = lr.min(), lr.max()
            if hi <= lo:
                continue  # constant input: the compressor predicts it exactly without a network
            lr = (lr - lo) / (hi - lo)
            bound = plane.eb / (hi - lo)
            if noise > 0:
                lr = lr + rng.uniform(-noise, noise, lr.shape)
                bound = noise
            if self.context_planes:
                context = [lr, lr] if not beside else \
                    [(c - lo) / (hi - lo) + (rng.uniform(-noise, noise, c.shape) if noise > 0 else 0.0)
                     for c in context]
                contexts.append(np.stack(context))
            lrs.append(lr)
            hrs.append((hr - lo) / (hi - lo))
            bounds.append(bound)
        as_tensor = lambda xs: torch.from_numpy(np.stack(xs)[:, None].astype(np.float32))  # noqa: E731
        batch = {"lr": as_tensor(lrs), "hr": as_tensor(hrs), "bound": torch.tensor(bounds, dtype=torch.float32)}
        if self.context_planes:
            batch["context"] = torch.from_numpy(np.stack(contexts).astype(np.float32))
        return batch

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """{'lr': (B, 1, p/2, p/2), 'hr': (B, 1, p, p), 'bound': (B,)} float32."""
        return self._draw(self.train_planes, batch_size, rng, self.input_noise, augmented=True)

    def validation_set(self) -> dict[str, torch.Tensor]:
        """A fixed set of held-out pairs, the same at every validation."""
        return self._validation


class AutoencoderBlocks(_FieldData):
    """Random (block, block, ...) windows scaled with the global range of their field (as the compressor does).

    spatial_dims 2 takes 2D fields and slices of 3D fields; 3 takes 3D fields only."""

    def __init__(self, train_files: list, val_files: list | None = None, data_dir: str = ".", spatial_dims: int = 2,
                 block_size: int = 32, holdout: float = 0.2, fill_threshold: float = 1e19, val_samples: int = 1024,
                 seed: int = 0) -> None:
        super().__init__(train_files, val_files, data_dir, holdout, fill_threshold, val_samples, seed)
        self.spatial_dims, self.block_size = spatial_dims, block_size
        self.train_pool = self._pool(self.train_fields)
        self.val_pool = self._pool(self.val_fields)
        if not self.train_pool or not self.val_pool:
            raise InvalidInputError(f"need {spatial_dims}D fields at least {block_size} wide for training and "
                                    "validation")
        self._validation = self._draw(self.val_pool, val_samples, np.random.default_rng(seed + 7919))

    def _pool(self, fields: list[np.ndarray]) -> list[tuple[np.ndarray, float, float]]:
        pool = []
        for f in fields:
            finite = f[np.isfinite(f) & (np.abs(f) < self.fill_threshold)]
            if finite.size == 0:
                continue
            lo, hi = float(finite.min()), float(finite.max())
            parts = planes(f) if self.spatial_dims == 2 else ([f] if f.ndim == 3 else [])
            pool += [(p, lo, hi) for p in parts if min(p.shape) >= self.block_size and hi > lo]
        return pool

    def _draw(self, pool: list, count: int, rng: np.random.Generator) -> dict:
        size = self.block_size
        weights = np.array([np.prod([n - size + 1 for n in p.shape]) for p, _, _ in pool], dtype=np.float64)
        blocks = []
        attempts = 0
        while len(blocks) < count:
            attempts += 1
            if attempts > 50 * count:
                raise InvalidInputError("could not find enough blocks free of fill values / NaN")
            plane, lo, hi = pool[rng.choice(len(pool), p=weights / weights.sum())]
            start = [rng.integers(0, n - size + 1) for n in plane.shape]
            block = plane[tuple(slice(s, s + size) for s in start)]
            if _valid(block, self.fill_threshold):
                blocks.append((block - lo) / (hi - lo))
        return {"block": torch.from_numpy(np.stack(blocks)[:, None].astype(np.float32))}

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """{'block': (B, 1, *block)} float32 in [0, 1]."""
        return self._draw(self.train_pool, batch_size, rng)

    def validation_set(self) -> dict[str, torch.Tensor]:
        """A fixed set of held-out blocks."""
        return self._validation
