"""Every contract method of every built-in plugin runs under the plugin's lock,
including methods a plugin takes from mixins (the TIFF plugin's region reads,
metadata and writer live in mixin classes)."""
import threading

import numpy as np
import pytest
import tifffile

import imgio.v3 as iio
from imgio.core import plugin as core_plugin
from imgio.core import registry

BUILTINS = [s for s in registry.plugins() if s.module.startswith("imgio.")]


@pytest.mark.parametrize("spec", BUILTINS, ids=lambda s: s.name)
def test_contract_methods_are_locked(spec):
    cls = spec.load()
    for name in core_plugin._LOCKED_METHODS:
        owner = next(k for k in cls.__mro__ if name in k.__dict__)
        if owner is core_plugin.PluginV3:
            continue  # the defaults call locked methods
        assert getattr(getattr(cls, name), "_imgio_locked", False), f"{cls.__name__}.{name}"


def test_mixin_methods_are_locked_in_a_new_plugin():
    class Mixin:
        def read_region(self, box, **kw):
            return "mine"

    class P(Mixin, core_plugin.PluginV3):
        pass

    assert P.read_region._imgio_locked
    assert not getattr(Mixin.read_region, "_imgio_locked", False)  # the mixin is untouched


def test_threads_share_one_tiff_plugin(tmp_path):
    """Concurrent region reads on one TIFF plugin (zlib strips through tifffile's
    shared file handle): all equal to the serial result.  Before the lock covered
    mixins, this raced on the handle's seek + read and raised CorruptFileError."""
    path = tmp_path / "z.tif"
    vol = np.random.default_rng(1).integers(0, 60000, (24, 64, 48)).astype(np.uint16)
    tifffile.imwrite(path, vol, compression="zlib", rowsperstrip=4,
                     metadata={"axes": "ZYX"})
    errors, got = [], {}
    with iio.imopen(path, "r") as f:
        def work(k):
            try:
                for i in range(k, 24, 6):
                    got[i] = f.read_region((slice(i, i + 1), slice(5, 60), slice(0, 48)))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    for i in range(24):
        np.testing.assert_array_equal(got[i], vol[i:i + 1, 5:60])
