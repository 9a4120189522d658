"""Compiled kernels of imgio (built from the ``.pyx`` files in this folder).

Do not call these directly: use the validating wrappers in :mod:`imgio._kernels`.
"""
