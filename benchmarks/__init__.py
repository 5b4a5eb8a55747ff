"""Benchmarks: the pipeline against the reference implementation."""
