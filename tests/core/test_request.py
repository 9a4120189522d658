"""Resources: every URI kind, extensions, errors raised before any plugin is tried."""
import io
import os

import numpy as np
import pytest

from imgio.core.request import Request
from imgio.errors import FormatError


def test_path_kinds(tmp_path):
    p = tmp_path / "a.TIF"
    p.write_bytes(b"II*\x00")
    for uri in (p, str(p), "file://" + str(p)):
        r = Request(uri, "r")
        assert r.kind == "path" and r.filename == str(p) and r.extension == ".tif"
        assert r.firstbytes == b"II*\x00"
        r.finish()


def test_home_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY")
    assert Request("~/x.npy", "r").path == str(tmp_path / "x.npy")


def test_explicit_extension_must_have_dot():
    with pytest.raises(ValueError, match="starting with a `.`"):
        Request(b"abc", "r", extension="png")
    assert Request(b"abc", "r", extension=".PNG").extension == ".png"


def test_bytes_and_memoryview():
    for uri in (b"abcdef", memoryview(b"abcdef")):
        r = Request(uri, "r")
        assert r.kind == "bytes" and r.firstbytes == b"abcdef"
        assert r.get_file().read() == b"abcdef"
        r.finish()


def test_bytes_cannot_be_a_write_target():
    with pytest.raises(FormatError, match="<bytes>"):
        Request(b"abc", "w")


def test_return_bytes_target():
    r = Request("<bytes>", "w", extension=".npy")
    r.get_file().write(b"hello")
    assert r.finish() == b"hello"
    assert r.finish() == b"hello"  # twice is harmless


def test_file_objects_are_not_closed():
    buf = io.BytesIO(b"data")
    r = Request(buf, "r")
    assert r.kind == "file"
    r.finish()
    assert not buf.closed


def test_unreadable_uri_types():
    for uri in (12, [1, 2], bytearray(b"x")):
        with pytest.raises(FormatError, match="Cannot understand"):
            Request(uri, "r")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        Request(tmp_path / "nope.tif", "r")
    assert info.value.filename == str(tmp_path / "nope.tif")
    with pytest.raises(FileNotFoundError) as info:
        Request(tmp_path / "no" / "x.tif", "w")
    assert info.value.filename == str(tmp_path / "no")


def test_directory_and_glob(tmp_path):
    (tmp_path / "z1.tif").write_bytes(b"x")
    assert Request(tmp_path, "r").kind == "dir"
    r = Request(str(tmp_path / "*.tif"), "r")
    assert r.kind == "glob" and r.paths() == [str(tmp_path / "z1.tif")]
    with pytest.raises(FormatError, match="directory"):
        Request(tmp_path, "w")


def test_invalid_modes():
    for mode in ("x", "rx", "rii", "", "wq"):
        with pytest.raises(ValueError, match="Invalid mode"):
            Request(b"x", mode)
    assert Request(b"x", "rv").image_mode == "v"


def test_atomic_write_commit_and_discard(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    r = Request(target, "w")
    r.get_file().write(b"new")
    assert target.read_bytes() == b"old"  # nothing visible before finish
    r.finish(success=False)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
    r = Request(target, "w")
    r.get_file().write(b"new")
    r.finish()
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_local_filename_for_bytes_is_cleaned_up():
    data = np.arange(3).tobytes()
    r = Request(data, "r", extension=".raw")
    name = r.get_local_filename()
    with open(name, "rb") as fh:
        assert fh.read() == data
    r.finish()
    assert not os.path.exists(name)


def test_committed_file_gets_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        target = tmp_path / "new.bin"
        r = Request(target, "w")
        r.get_file().write(b"x")
        r.finish()
        assert target.stat().st_mode & 0o777 == 0o644
        target.chmod(0o640)  # an existing file keeps its permissions
        r = Request(target, "w")
        r.get_file().write(b"y")
        r.finish()
        assert target.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)


def test_bare_descriptor_is_shared_then_closed(tmp_path):
    import os

    from imgio.core.request import Request
    path = tmp_path / "a.bin"
    path.write_bytes(b"0123456789" * 200)
    req = Request(str(path), "r")
    fd = req.fileno()
    assert req.firstbytes[:4] == b"0123" and req.fileno() == fd
    assert req.size() == 2000
    fh = req.get_file()  # wraps the same descriptor, named after the file
    assert fh.fileno() == fd and fh.raw.name == str(path)
    assert fh.read(3) == b"012"
    req.finish()
    with pytest.raises(OSError):
        os.fstat(fd)
    # an abandoned request closes a descriptor nobody wrapped
    req = Request(str(path), "r")
    fd = req.fileno()
    del req
    with pytest.raises(OSError):
        os.fstat(fd)
