"""The registry: one source of plugin metadata, public sniffers, third-party entry points.

Third-party plugins are tested as real installed distributions: a ``*.dist-info``
folder with ``entry_points.txt`` and a module, on ``sys.path`` (of a subprocess,
or of this process through ``monkeypatch.syspath_prepend``), found by
``importlib.metadata`` like any installed package."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import imgio
import imgio.v3 as iio
from imgio.core import registry
from imgio.plugins import hdf5, npy_sniff, pillow_sniff, tiff

ROOT = pathlib.Path(imgio.__file__).parent


# -- one source of metadata --------------------------------------------------------------------
@pytest.mark.parametrize("spec", registry.PLUGINS[:len(registry._BUILTINS)], ids=lambda s: s.name)
def test_class_metadata_equals_its_spec(spec):
    cls = spec.load()
    for attr in registry.METADATA:
        assert getattr(cls, attr) == getattr(spec, attr), (spec.name, attr)


def test_spec_overrides_what_a_class_body_says(tmp_path, monkeypatch):
    """Whether or not a plugin class still repeats its metadata, the spec wins."""
    (tmp_path / "drifted_plugin.py").write_text(textwrap.dedent("""
        from imgio.core.plugin import PluginV3
        class Drifted(PluginV3):
            name = "old-name"
            extensions = (".old",)
            modes = "i"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = registry.PluginSpec(name="drifted", module="drifted_plugin", class_name="Drifted",
                               extensions=(".new", ".newer"), modes="iIvV",
                               description="a drifted plugin", backend="numpy")
    cls = spec.load()
    assert (cls.name, cls.extensions, cls.modes, cls.description) == (
        "drifted", (".new", ".newer"), "iIvV", "a drifted plugin")
    monkeypatch.delitem(sys.modules, "drifted_plugin")


def test_owned_plugins_do_not_repeat_their_metadata():
    for rel in ("plugins/npy.py", "plugins/pillow.py"):
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Plugin"):
                assigned = {t.id for stmt in node.body if isinstance(stmt, ast.Assign)
                            for t in stmt.targets if isinstance(t, ast.Name)}
                assert not assigned & set(registry.METADATA), (rel, node.name, assigned)


# -- sniffers: public, beside their plugin, light -------------------------------------------------
def test_sniffers_are_the_public_ones():
    by_name = {s.name: s.sniff for s in registry._BUILTINS}
    assert by_name["tifffile"] is tiff.sniff and by_name["hdf5"] is hdf5.sniff
    assert by_name["npy"] is npy_sniff.sniff and by_name["npz"] is npy_sniff.sniff_npz
    assert by_name["pillow"] is pillow_sniff.sniff


@pytest.mark.parametrize("head, name", [
    (b"\x93NUMPY\x01\x00", "npy"), (b"PK\x03\x04rest", "npz"), (b"PK\x05\x06", "npz"),
    (b"\x89PNG\r\n\x1a\n....", "pillow"), (b"\xff\xd8\xff\xe0", "pillow"), (b"GIF89a", "pillow"),
    (b"GIF87a", "pillow"), (b"BM....", "pillow"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "pillow"),
    (b"II*\x00", "tifffile"), (b"\x89HDF\r\n\x1a\n", "hdf5"), (b"RIFF\x00\x00\x00\x00WAVE", None),
    (b"", None), (b"\x93NUMP", None),
])
def test_sniffers_recognise_their_format_only(head, name):
    matched = [s.name for s in registry._BUILTINS if s.sniff is not None and s.sniff(head)]
    assert matched == ([name] if name else [])


def test_no_plugin_imports_private_registry_names():
    for path in (ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("registry"):
                assert not [a.name for a in node.names if a.name.startswith("_")], path


def test_registry_import_is_light():
    code = ("import sys, imgio.core.registry as r; r.plugins(); "
            "print([m for m in ('PIL', 'tifffile', 'h5py', 'zarr', 'dask') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# -- third-party plugins through the entry-point group ``imgio.plugins`` --------------------------
PLUGIN_MODULE = '''
import numpy as np
from imgio.core.plugin import ImageProperties, PluginV3
from imgio.core.registry import PluginSpec
from imgio.errors import InitializationError


class RawPlugin(PluginV3):
    """``.raw8``: a 4-byte big-endian width, then uint8 rows."""

    name = "raw8"
    extensions = (".raw8",)
    description = "8-bit raw rows with a width header"

    def __init__(self, request, **kwargs):
        super().__init__(request)
        if request.io_mode == "r" and len(request.firstbytes) < 4:
            raise InitializationError("too short for a .raw8 file")

    def read(self, *, index=None, **kwargs):
        data = self.request.get_file().read()
        width = int.from_bytes(data[:4], "big")
        return np.frombuffer(data[4:], np.uint8).reshape(-1, width).copy()

    def write(self, ndimage, *, is_batch=None, **kwargs):
        arr = np.ascontiguousarray(ndimage, np.uint8)
        fh = self.request.get_file()
        fh.write(arr.shape[1].to_bytes(4, "big") + arr.tobytes())


def _sniff(head):
    return head[:4] == b"MAGI"


class MagicPlugin(RawPlugin):
    def read(self, *, index=None, **kwargs):
        return np.frombuffer(self.request.get_file().read()[4:], np.uint8).copy()


#: a spec: metadata here, the class repeats none of it
MAGIC = PluginSpec(name="magic", module=__name__, class_name="MagicPlugin",
                   extensions=(".mgc",), modes="i", description="bytes after a MAGI header",
                   backend="numpy", sniff=_sniff)
'''


def make_distribution(site: pathlib.Path, entries: str, module: str = PLUGIN_MODULE,
                      name: str = "imgio_fakeraw") -> pathlib.Path:
    """A real installed distribution ``name`` 1.0 in ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(module)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[imgio.plugins]\n{entries}\n")
    return site


def run(code: str, site: pathlib.Path, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env_code = (f"import sys; sys.path.insert(0, {str(site)!r}); "
                "import warnings; warnings.simplefilter('error')\n") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True,
                          cwd=cwd)


def test_third_party_plugin_reads_and_writes_by_extension(tmp_path):
    site = make_distribution(tmp_path / "site", "raw8 = imgio_fakeraw:RawPlugin\n"
                                                "magic = imgio_fakeraw:MAGIC")
    out = run("""
        import sys
        import numpy as np
        import imgio, imgio.v3 as iio, imgio.v2 as imageio
        assert 'imgio_fakeraw' not in sys.modules          # nothing loaded at import
        img = np.arange(12, dtype=np.uint8).reshape(3, 4)
        iio.imwrite('a.raw8', img)
        assert 'imgio_fakeraw' in sys.modules
        assert open('a.raw8', 'rb').read()[:4] == (4).to_bytes(4, 'big')
        np.testing.assert_array_equal(iio.imread('a.raw8'), img)
        with iio.imopen('a.raw8', 'r') as f:
            assert f.name == 'raw8' and type(f).__name__ == 'RawPlugin'
        open('b.mgc', 'wb').write(b'MAGI\\x01\\x02')       # by signature, any name
        open('b.bin', 'wb').write(b'MAGI\\x01\\x02')
        assert iio.imread('b.bin').tolist() == [1, 2]
        from imgio.core import registry
        names = [s.name for s in registry.plugins()]
        assert names[-2:] == ['magic', 'raw8'], names      # after the built-ins
        magic = registry.get_spec('magic').load()
        assert (magic.name, magic.extensions, magic.modes) == ('magic', ('.mgc',), 'i')
        assert 'raw8' in [f.name for f in imageio.formats]
        print('ok')
    """, site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_broken_third_party_plugin_warns_and_imgio_works(tmp_path):
    site = make_distribution(tmp_path / "site", "\n".join([
        "raw8 = imgio_fakeraw:RawPlugin",
        "gone = imgio_fakeraw_missing:Plugin",          # module not importable
        "notaplugin = imgio_fakeraw:np",                # not a spec, not a class
        "tifffile = imgio_fakeraw:RawPlugin",           # name clash with a built-in
    ]))
    out = run("""
        import warnings
        import numpy as np
        import imgio.v3 as iio
        from imgio.core import registry
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            iio.imwrite('a.npy', np.zeros(3))
            assert iio.imread('a.npy').tolist() == [0, 0, 0]
            iio.imwrite('a.raw8', np.ones((2, 2), np.uint8))
            assert iio.imread('a.raw8').tolist() == [[1, 1], [1, 1]]
        for w in caught:
            assert issubclass(w.category, registry.PluginLoadWarning), w
            print(w.message)
        assert [s.name for s in registry.plugins()][-1] == 'raw8'
    """, site, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3, lines
    text = "\n".join(lines)
    for name in ("'gone'", "'notaplugin'", "'tifffile'"):
        assert name in text
    assert "imgio_fakeraw_missing" in text and "ModuleNotFoundError" in text
    assert "already registered" in text and "distribution imgio_fakeraw" in text


def test_entry_points_load_in_process(tmp_path, monkeypatch):
    site = make_distribution(tmp_path / "site", "raw8 = imgio_fakeraw:RawPlugin\n"
                                                "broken = imgio_fakeraw:nothing_here")
    monkeypatch.syspath_prepend(str(site))
    registry._forget_entry_points()
    try:
        with pytest.warns(registry.PluginLoadWarning, match="'broken'.*AttributeError"):
            spec = registry.get_spec("RAW8")
        assert spec.extensions == (".raw8",) and registry.known_extensions()[".raw8"] == [spec]
        iio.imwrite(tmp_path / "x.raw8", np.full((2, 3), 7, np.uint8))
        assert iio.imread(tmp_path / "x.raw8").tolist() == [[7] * 3] * 2
        # plugin= by name, and the v2 API, see the third-party plugin too
        assert iio.imread(tmp_path / "x.raw8", plugin="raw8").shape == (2, 3)
        assert imgio.v2.imread(tmp_path / "x.raw8").shape == (2, 3)
    finally:
        monkeypatch.undo()  # the distribution leaves sys.path
        registry._forget_entry_points()
        sys.modules.pop("imgio_fakeraw", None)
    with pytest.raises(ValueError, match="not a registered plugin"):
        registry.get_spec("raw8")
