"""srnsz: error-bounded lossy compression of scientific arrays with neural and classical predictors."""

from srnsz.api import Codec, StreamInfo, compress, decompress, info
from srnsz.bounds import ErrorBound
from srnsz.errors import InvalidInputError, ReconstructionMismatchError, SrnszError, StreamFormatError
from srnsz.eval import metrics
from srnsz.predictors import list_predictors

__all__ = [
    "Codec", "ErrorBound", "InvalidInputError", "ReconstructionMismatchError", "SrnszError", "StreamFormatError",
    "StreamInfo", "compress", "decompress", "info", "list_predictors", "metrics",
]
