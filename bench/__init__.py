"""Feedline's benchmarks: each figure measured beside its baseline in the same run.

Entry point: ``python -m bench.run [--quick]`` (``make bench`` / ``make bench-quick``).
"""
