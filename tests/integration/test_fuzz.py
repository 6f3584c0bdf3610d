"""A short seeded run of the stream fuzzer (tests/fuzz_streams.py; the long run's counts are in the issue note):
damaged and crafted single and chunked streams decode to what was compressed or fail with a clear srnsz error."""

from __future__ import annotations

from fuzz_streams import run


def test_damaged_and_crafted_streams_never_decode_wrong_or_crash():
    tally = run(single=120, chunked_cases=40, crafted=160, seed=7, limit=10.0, cli_every=10)
    assert tally.failures() == 0, tally.report()
    errors = sum(c["error"] for c in tally.counts.values())
    assert errors > 250  # the damage reached the readers' checks, not only harmless bytes
