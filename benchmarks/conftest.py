"""Benchmarks: imgio and its peers on the same generated data, in the same run.

Run ``pytest benchmarks`` for timings; CI runs ``pytest benchmarks
--benchmark-disable`` so every benchmark still executes once and cannot rot.
"""
