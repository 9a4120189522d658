"""A small all-pairs (pairwise) design: every pair of values of any two factors in some row.

Used instead of cartesian grids (``itertools.product``) by the kernel tests: a grid
of 6 factors with 6-20 values each is thousands of cases, its pairwise cover is
about the product of the two largest factors.
"""
from __future__ import annotations

import itertools
from typing import Sequence


def pairwise(*factors: Sequence) -> list[tuple]:
    """Rows (one value per factor) covering every pair of values of every two factors.

    Greedy and deterministic: each row starts from an uncovered pair and picks, for
    every other factor, the value covering the most still-uncovered pairs.
    """
    k = len(factors)
    if k < 2:
        return [(v,) for v in (factors[0] if factors else [])]
    idx = [range(len(f)) for f in factors]
    uncovered = {(a, i, b, j) for a, b in itertools.combinations(range(k), 2)
                 for i in idx[a] for j in idx[b]}
    rows = []
    while uncovered:
        a, i, b, j = min(uncovered)
        row = [None] * k
        row[a], row[b] = i, j
        for f in range(k):
            if row[f] is not None:
                continue
            best = max(idx[f], key=lambda v: sum(
                ((g, row[g], f, v) if g < f else (f, v, g, row[g])) in uncovered
                for g in range(k) if row[g] is not None))
            row[f] = best
        for a2, b2 in itertools.combinations(range(k), 2):
            uncovered.discard((a2, row[a2], b2, row[b2]))
        rows.append(tuple(factors[f][row[f]] for f in range(k)))
    return rows
