"""Benchmarks: scripts that print a table and write JSON results under bench/results/."""
