"""Benchmarks of the pipeline. ``python -m bench`` runs those listed in :mod:`bench.__main__`;
each writes its results under ``bench/results/``."""
