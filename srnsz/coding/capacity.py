"""How many values a stream's sections can hold at most, read from their headers without decoding anything.

A header that claims more values than that is damaged or hostile: refused before the decoder allocates the field
(a header claiming a thousand times the shape would otherwise cost gigabytes and minutes before the reconstruction
checksum refused it). The bound is loose where the coding is dense (a context-mixed code can cost a few
hundred-thousandths of a bit), so decoders still check exact sizes (anchors, lossless data) and stop when they read
past their bytes; this check only keeps absurd claims from reaching them.
"""

from __future__ import annotations

import math

from srnsz.coding import lossless
from srnsz.coding.entropy import code_capacity
from srnsz.errors import StreamFormatError

# Sections whose zstd frame holds values of the field's dtype as they are: the anchors of interp/hat, the lossless data
VALUE_SECTIONS = ("ANCH", "RAWD")


def values_held(sections: dict[str, bytes], itemsize: int) -> int | None:
    """The most values ``sections`` can hold (codes plus values stored as they are), or None where a coding method
    puts no bound on it (coding methods 1 and 3 of formats 1.0-1.1)."""
    held = 0
    if "CODE" in sections:
        codes = code_capacity(sections["CODE"])
        if codes is None:
            return None
        held += codes
    for tag in VALUE_SECTIONS:
        if tag in sections:
            held += lossless.content_bound(sections[tag]) // itemsize
    return held


def check_capacity(sections: dict[str, bytes], shape: tuple[int, ...], itemsize: int) -> None:
    """Raise StreamFormatError when ``shape`` has more values than ``sections`` can hold."""
    claimed = math.prod(shape)
    held = values_held(sections, itemsize)
    if held is not None and claimed > held:
        raise StreamFormatError(f"the header claims {claimed:.4g} values (shape {list(shape)}), more than the "
                                f"stream's sections can hold (at most {held:.4g}): the stream is damaged")
