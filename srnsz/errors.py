"""Exceptions raised by srnsz. Every user-facing failure is an ``SrnszError``."""


class SrnszError(Exception):
    """Base class for all srnsz errors."""


class InvalidInputError(SrnszError, ValueError):
    """An argument (array, error bound, option) is not acceptable."""


class StreamFormatError(SrnszError, ValueError):
    """A compressed stream is truncated, corrupted or of an unknown format version."""


class ReconstructionMismatchError(SrnszError):
    """The decoder's reconstruction differs from the one the compressor verified."""
