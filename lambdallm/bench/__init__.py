"""Benchmarks of the whole chain on the local cloud (`lambdallm bench`, `make bench`)."""

from lambdallm.bench.run import run

__all__ = ["run"]
