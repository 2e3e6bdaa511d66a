"""Benchmarks with their baselines (see bench/README.md and docs/performance.md)."""
