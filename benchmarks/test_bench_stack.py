"""Stacking frames into a volume: the kernel against ``np.stack`` of a list."""
import numpy as np
import pytest

from imgio import _kernels, _reference

SHAPE = (64, 512, 512)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 65535, SHAPE[1:], dtype=np.uint16) for _ in range(SHAPE[0])]


@pytest.mark.benchmark(group="stack 64x512x512 u2")
def test_imgio_stack_frames(benchmark, frames):
    vol = benchmark(lambda: _kernels.stack_frames(iter(frames)))
    assert vol.shape == SHAPE


@pytest.mark.benchmark(group="stack 64x512x512 u2")
def test_numpy_stack_list(benchmark, frames):
    vol = benchmark(lambda: _reference.stack_frames(iter(frames)))
    assert vol.shape == SHAPE
