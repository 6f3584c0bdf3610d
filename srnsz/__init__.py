"""srnsz: error-bounded lossy compression of scientific arrays with neural and classical predictors."""

from importlib import metadata as _metadata

from srnsz import metrics
from srnsz.api import Codec, StreamInfo, compress, decompress, info
from srnsz.bounds import ErrorBound
from srnsz.errors import InvalidInputError, ReconstructionMismatchError, SrnszError, StreamFormatError
from srnsz.predictors import list_predictors

try:
    __version__ = _metadata.version("srnsz")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Codec", "ErrorBound", "InvalidInputError", "ReconstructionMismatchError", "SrnszError", "StreamFormatError",
    "StreamInfo", "__version__", "compress", "decompress", "info", "list_predictors", "metrics",
]
