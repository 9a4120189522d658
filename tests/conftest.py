"""Shared fixtures.  Every fixture is generated here or copied in tests/data."""
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """Folder of the real sample images (copied from the public imageio test set)."""
    return DATA


# Property tests and fuzzing: random in development (to find new cases), but
# derandomized in CI so a run is reproducible and a red build is never luck.
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
