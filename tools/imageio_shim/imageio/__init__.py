"""A stand-in ``imageio`` package that resolves to imgio (for compatibility runs).

Put ``tools/imageio_shim`` first on ``sys.path`` (``PYTHONPATH``) and
``import imageio``, ``imageio.v2``, ``imageio.v3`` and any ``imageio.X.Y``
return imgio's modules of the same name.  Used by
``tools/run_skimage_io_tests.py``; never installed.
"""
import importlib
import importlib.abc
import importlib.util
import sys

import imgio as _imgio


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve ``imageio.<name>`` as ``imgio.<name>``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("imageio."):
            target_name = "imgio." + fullname[len("imageio."):]
            if importlib.util.find_spec(target_name) is None:
                return None
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module("imgio." + spec.name[len("imageio."):])
        self._specs = getattr(self, "_specs", {})
        self._specs[id(module)] = module.__spec__
        return module

    def exec_module(self, module):
        # the import system stamped the alias spec on imgio's module: undo it
        module.__spec__ = self._specs.pop(id(module), module.__spec__)


sys.meta_path.insert(0, _Alias())


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_imgio, name)


__version__ = _imgio.__version__
from imgio.v2 import *  # noqa: E402,F401,F403  (imageio's top level is v2's)
from imgio.v3 import imopen, imiter  # noqa: E402,F401
import imageio.v2 as v2  # noqa: E402,F401
import imageio.v3 as v3  # noqa: E402,F401
