"""imageio's module name for the NPZ format (``imageio.plugins.npz``).

imgio serves ``.npz`` files with :class:`imgio.plugins.npy.NpzPlugin`; imageio's
class there is ``NpzFormat``, a legacy format, which this name also points to.
"""
from .npy import NpzPlugin

NpzFormat = NpzPlugin

__all__ = ["NpzPlugin", "NpzFormat"]
