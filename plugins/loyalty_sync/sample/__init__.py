"""Deterministic sample Nector exports for tests, demos and benchmarks."""
