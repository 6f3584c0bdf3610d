"""The predictor contract and the one registry of predictors."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from srnsz.errors import InvalidInputError
from srnsz.neural.runtime import Runtime

Progress = Callable[[int], None]


@dataclass
class Encoded:
    """What a predictor hands the container: named byte sections, JSON-able parameters, and the
    reconstruction the decoder will produce (shape and dtype of the input)."""

    sections: dict[str, bytes]
    params: dict[str, Any]
    recon: np.ndarray
    numerics: dict[str, Any] = field(default_factory=dict)  # what else can change the bits (header "numerics")
    # Registry name to record when it differs from the predictor that ran: a hat or ae run that kept the
    # plain interp (or lorenzo) stream records that predictor, so its stream is exactly that stream.
    predictor: str | None = None
    # Other encodings of the same data (e.g. the plain interp one beside a hat one): the pipeline writes each
    # and keeps the smallest finished stream (this one on ties).
    alternatives: list[Encoded] = field(default_factory=list)
    # The pointwise bound this encoding holds where it is larger than the bound asked for (a quantizer with a
    # dead zone, see srnsz.quantizer); None: the bound asked for.
    max_error: float | None = None
    # The stream format minor version the encoding needs (a feature newer than 1.2, see docs/format.md); None: 1.2.
    format_minor: int | None = None

    @property
    def nbytes(self) -> int:
        """Payload bytes of all sections (what competing encodings are compared on)."""
        return sum(len(s) for s in self.sections.values())


class Predictor(ABC):
    """A decomposition of the field: owns the traversal order and predicts only from reconstructed values.

    ``compress`` and ``decompress`` mirror each other; ``decompress(compress(x).sections, ...)`` must return
    exactly ``compress(x).recon``.
    """

    name: ClassVar[str]
    lossy: ClassVar[bool] = True
    can_preview: ClassVar[bool] = False  # has a :meth:`preview` cheaper than compressing
    # holds the bound it is given (False: states the error it has, for the quality modes only; see srnsz.api.compress)
    holds_bound: ClassVar[bool] = True

    @abstractmethod
    def compress(self, data: np.ndarray, eb: float, progress: Progress | None = None,
                 free: np.ndarray | None = None) -> Encoded:
        """Encode ``data`` (any shape, float32/float64) so every finite value comes back within ``eb``.

        ``free``: bool mask (``data``'s shape) of points whose reconstruction does not matter (missing values,
        which the pipeline stores and restores itself; ``data`` holds a smooth extension there). A predictor may
        reconstruct them as it likes, as long as its decoder needs no mask to do the same; None = none."""

    @abstractmethod
    def decompress(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                   dtype: np.dtype, eb: float, progress: Progress | None = None) -> np.ndarray:
        """Rebuild the reconstruction from what :meth:`compress` wrote."""

    def decompress_into(self, out: np.ndarray, sections: dict[str, bytes], params: dict[str, Any],
                        eb: float, progress: Progress | None = None) -> np.ndarray:
        """:meth:`decompress` into ``out`` (C-contiguous, of the field's shape and dtype), returned: by default a
        copy of its result; a predictor that can reconstruct in place does (no second field in memory)."""
        out[...] = self.decompress(sections, params, out.shape, out.dtype, eb, progress)
        return out

    def check_sections(self, sections: dict[str, bytes], params: dict[str, Any], shape: tuple[int, ...],
                       dtype: np.dtype) -> None:
        """Raise StreamFormatError where ``sections`` cannot be the stream of a field of ``shape`` (sizes read from
        section headers, nothing decoded or allocated: run before :meth:`decompress` and by ``srnsz.info``).
        Default: nothing to check beyond the container's own (srnsz.coding.capacity)."""
        return None  # a hook, not an abstract method: most predictors have no exact sizes to check

    @classmethod
    @abstractmethod
    def from_params(cls, params: dict[str, Any], runtime: Runtime | None = None) -> Predictor:
        """The predictor configured as recorded in a stream header; ``runtime``: where the decoder runs networks
        whose bits do not depend on it (None: the default :class:`Runtime`)."""

    @classmethod
    def options(cls) -> set[str]:
        """The keyword options the predictor takes: its ``__init__``'s, and, where that forwards ``**options`` to
        the class it extends, that class's too."""
        names, forwards = set(), False
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.kind is parameter.VAR_KEYWORD:
                forwards = True
            elif parameter.name != "self" and parameter.kind is not parameter.VAR_POSITIONAL:
                names.add(parameter.name)
        parent = next((c for c in cls.__mro__[1:] if issubclass(c, Predictor) and "__init__" in vars(c)), None)
        return names | parent.options() if forwards and parent is not None else names

    def tuned(self, data: np.ndarray, eb: float, free: np.ndarray | None = None) -> Predictor:
        """This predictor with its open options chosen for the smallest stream of ``data`` at ``eb`` (the choice
        :meth:`compress` makes), tuning off; itself when it has nothing to choose or chooses inside compress."""
        return self

    def for_psnr(self, data: np.ndarray, eb: float, free: np.ndarray | None, target_db: float,
                 for_ssim: bool = False) -> tuple[Predictor, float]:
        """(predictor, bound to start from) for the psnr mode: a predictor whose open choices are made for the
        fewest bits at ``target_db`` over the valid points rather than for the smallest stream at ``eb`` (data
        units; the uniform-error estimate of the target), and a better estimate of the bound reaching the target
        when it has one; ``for_ssim``: for the ssim mode, which then searches the bound for its SSIM (choices that
        buy PSNR at SSIM's expense left out). Default: itself and ``eb`` (its compress tunes as in the other
        modes)."""
        return self, eb

    def preview(self, data: np.ndarray, eb: float, free: np.ndarray | None = None) -> np.ndarray:
        """The reconstruction :meth:`compress` would give at ``eb``, made more cheaply (no entropy coding), for
        searching the bound of a PSNR target; only where ``can_preview``."""
        raise NotImplementedError(f"the {self.name} predictor has no preview")


PREDICTORS: dict[str, type[Predictor]] = {}


def register_predictor(cls: type[Predictor]) -> type[Predictor]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in PREDICTORS:
        raise RuntimeError(f"predictor {cls.name!r} registered twice")
    PREDICTORS[cls.name] = cls
    return cls


def list_predictors() -> list[str]:
    """Names of the registered predictors, sorted."""
    return sorted(PREDICTORS)


def create_predictor(name: str, **options: Any) -> Predictor:
    """Instantiate predictor ``name`` with keyword ``options``; unknown names and options are clear errors."""
    if name not in PREDICTORS:
        raise InvalidInputError(f"predictor {name!r} is unknown; available: {', '.join(list_predictors())}")
    foreign = sorted(set(options) - PREDICTORS[name].options())
    if foreign:
        takers = {key: [n for n in list_predictors() if key in PREDICTORS[n].options()] for key in foreign}
        where = "; ".join(f"{key!r} is an option of {', '.join(takers[key]) or 'no predictor'}" for key in foreign)
        raise InvalidInputError(f"bad options for the {name} predictor: it takes no option "
                                f"{', '.join(map(repr, foreign))} ({where})")
    try:
        return PREDICTORS[name](**options)
    except TypeError as exc:
        raise InvalidInputError(f"bad options for predictor {name!r}: {exc}") from None
