"""Shared fixtures.  Every fixture is generated here or copied in tests/data."""
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """Folder of the real sample images (copied from the public imageio test set)."""
    return DATA
