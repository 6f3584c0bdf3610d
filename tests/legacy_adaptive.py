"""The encoder of the retired adaptive context coding (coding method 3, format 1.1): only the reader ships
(srnsz.coding.adaptive); this writes what it reads, so the reader stays tested."""

from __future__ import annotations

import constriction
import numpy as np

from srnsz.coding.adaptive import LENGTH_CLASSES, AdaptiveModel, AdaptiveTable, zigzag
from srnsz.coding.batch import METHOD_ADAPTIVE, CodeBatch, context_groups


def spell(encoder: object, values: np.ndarray) -> None:
    """Code int16 ``values`` without a model: bit length b of the zigzagged value, then its b - 1 low bits."""
    u = zigzag(values)
    lengths = np.frexp(u.astype(np.float64))[1].astype(np.int32)  # = bit_length (0 for 0)
    encoder.encode(lengths, constriction.stream.model.Uniform(LENGTH_CLASSES))
    long = lengths >= 2
    if long.any():
        sizes = (1 << (lengths[long] - 1)).astype(np.int32)
        encoder.encode((u[long] - sizes).astype(np.int32), constriction.stream.model.Uniform(), sizes)



def _encode_with(encoder: object, model: AdaptiveModel, values: np.ndarray, spelled: bool = False) -> np.ndarray:
    """Code ``values`` with ``model`` and update it; returns the escaped values (or spells them out)."""
    index = model.indices(values)
    if model.symbols.size:
        encoder.encode(index, model.categorical())
    unseen = values[index == model.symbols.size]
    model.update(values, index)
    if spelled and unseen.size:
        spell(encoder, unseen)
    return unseen


def _encode_batch(table: AdaptiveTable, encoder: object, batch: CodeBatch) -> None:
    order, runs = context_groups(batch.keys)
    ordered = batch.codes[order].astype(np.int32)
    for key, start, stop in runs:
        model = table.models.setdefault(key, AdaptiveModel())
        while start < stop:
            segment = ordered[start:start + model.next_segment(stop - start)]
            start += segment.size
            unseen = _encode_with(encoder, model, segment)
            if unseen.size:
                _encode_with(encoder, table.shared, unseen, spelled=True)


def encode_adaptive(batches: list[CodeBatch]) -> bytes:
    encoder = constriction.stream.queue.RangeEncoder()
    table = AdaptiveTable()
    for b in batches:
        _encode_batch(table, encoder, b)
    return bytes([METHOD_ADAPTIVE]) + encoder.get_compressed().astype("<u4").tobytes()
