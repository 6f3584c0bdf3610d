"""Metrics, the side-by-side benchmark, peer codecs and plots."""
