"""imgio.v2.array.Array: an ndarray with a ``.meta`` dict (imageio's core.Array)."""
import copy
import pickle

import numpy as np
import pytest

import imgio
from imgio.v2.array import Array, Dict, Image


@pytest.fixture
def arr():
    return Array(np.arange(24, dtype=np.float64).reshape(4, 6), {"a": 1, "nested": {"b": 2}})


def test_alias_and_top_level():
    assert Image is Array
    assert imgio.Array is Array
    from imgio import v2
    assert v2.Array is Array


def test_is_a_view_with_copied_meta():
    base = np.zeros((3, 4), np.uint8)
    meta = {"x": 1, "nested": {"y": 2}}
    a = Array(base, meta)
    assert isinstance(a, np.ndarray) and isinstance(a, Array)
    assert np.shares_memory(a, base)
    base[0, 0] = 7
    assert a[0, 0] == 7
    meta["x"] = 99
    meta["nested"]["y"] = 99
    assert a.meta == {"x": 1, "nested": {"y": 2}}
    assert isinstance(a.meta, dict)


def test_default_meta_and_reuse():
    assert Array(np.zeros(3)).meta == {}
    a = Array(np.zeros(3), {"k": "v"})
    b = Array(a)  # keeps the source's meta
    assert b.meta == {"k": "v"}
    b.meta["k"] = "w"
    assert a.meta["k"] == "v"
    assert Array(a, {"other": 1}).meta == {"other": 1}


def test_bad_arguments():
    with pytest.raises(ValueError, match="numpy array"):
        Array([1, 2, 3])
    with pytest.raises(ValueError, match="dict"):
        Array(np.zeros(3), meta=[("a", 1)])


def test_meta_is_read_only_attribute_but_mutable(arr):
    with pytest.raises(AttributeError):
        arr.meta = {}
    arr.meta["new"] = 3
    assert arr.meta["new"] == 3


def test_meta_attribute_access(arr):
    assert isinstance(arr.meta, Dict)
    assert arr.meta.a == 1
    arr.meta.c = 5
    assert arr.meta["c"] == 5
    del arr.meta.c
    assert "c" not in arr.meta
    with pytest.raises(AttributeError, match="no key"):
        arr.meta.missing
    with pytest.raises(AttributeError):
        arr.meta.keys = 1  # a dict method
    with pytest.raises(AttributeError):
        del arr.meta.missing


@pytest.mark.parametrize("op", [
    lambda a: a[1:3],
    lambda a: a[:, ::2],
    lambda a: a.T,
    lambda a: a.reshape(6, 4),
    lambda a: a.astype(np.int32),
    lambda a: a.copy(),
    lambda a: copy.copy(a),
    lambda a: copy.deepcopy(a),
    lambda a: a.view(),
    lambda a: a[0],
])
def test_views_and_copies_keep_meta(arr, op):
    out = op(arr)
    assert type(out) is Array
    assert out.meta == arr.meta
    out.meta["a"] = 100  # a copy of the dict, not the same dict
    assert arr.meta["a"] == 1


@pytest.mark.parametrize("op", [
    lambda a: a + 1, lambda a: np.sqrt(a), lambda a: a == a, lambda a: -a, lambda a: a * a,
])
def test_same_shape_ufuncs_keep_meta(arr, op):
    out = op(arr)
    assert type(out) is Array
    assert out.shape == arr.shape
    assert out.meta == arr.meta


@pytest.mark.parametrize("op", [
    lambda a: a.sum(axis=0), lambda a: a.mean(axis=1), lambda a: np.max(a, axis=0),
    lambda a: np.stack([a, a]), lambda a: np.concatenate([a, a]),
])
def test_other_shapes_are_plain_ndarrays(arr, op):
    out = op(arr)
    assert type(out) is np.ndarray


@pytest.mark.parametrize("op", [
    lambda a: a.sum(), lambda a: a.max(), lambda a: a.any(), lambda a: a[0, 0], lambda a: np.mean(a),
])
def test_zero_d_results_are_scalars(arr, op):
    out = op(arr)
    assert not isinstance(out, np.ndarray)
    assert np.isscalar(out) or isinstance(out, np.generic)


def test_asarray_is_plain_asanyarray_keeps(arr):
    assert type(np.asarray(arr)) is np.ndarray
    assert type(np.array(arr)) is np.ndarray
    assert type(arr.view(np.ndarray)) is np.ndarray
    assert np.asanyarray(arr) is arr


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_keeps_meta(arr, protocol):
    # imageio's Array comes back with an empty meta; imgio keeps it
    out = pickle.loads(pickle.dumps(arr, protocol=protocol))
    assert type(out) is Array
    np.testing.assert_array_equal(out, arr)
    assert out.meta == arr.meta
    assert out.meta.a == 1  # still the attribute-access dict


def test_pickle_non_contiguous_and_fortran():
    base = np.asfortranarray(np.arange(20).reshape(4, 5))
    for a in (Array(base, {"f": 1}), Array(np.arange(20).reshape(4, 5)[:, ::2], {"s": 1})):
        out = pickle.loads(pickle.dumps(a, protocol=5))
        np.testing.assert_array_equal(out, a)
        assert out.meta == a.meta


def test_iteration_yields_arrays_with_meta(arr):
    rows = list(arr)
    assert len(rows) == 4
    assert all(type(r) is Array and r.meta == arr.meta for r in rows)


def test_repr_and_str(arr):
    assert repr(arr).startswith("Array(")
    assert str(arr) == str(np.asarray(arr))


def test_compare_with_imageio_array():
    """Behaviour shared with imageio.core.Array (except pickling, which imgio fixes)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from imageio.core import Array as RefArray
    data = np.arange(12.0).reshape(3, 4)
    ours, ref = Array(data, {"m": 1}), RefArray(data, {"m": 1})
    for op in (lambda a: a[1:], lambda a: a + 1, lambda a: a.sum(0), lambda a: a.sum()):
        o, r = op(ours), op(ref)
        assert isinstance(o, Array) == isinstance(r, RefArray)
        assert isinstance(o, np.ndarray) == isinstance(r, np.ndarray)
        np.testing.assert_array_equal(o, r)
    assert pickle.loads(pickle.dumps(ref)).meta == {}  # imageio's [bug]
    assert pickle.loads(pickle.dumps(ours)).meta == {"m": 1}


def test_deferred_meta_is_loaded_once_on_first_access():
    from imgio.v2.array import DeferredMeta
    calls = []

    def load():
        calls.append(1)
        return {"a": [1, 2]}

    a = Array(np.zeros((3, 4)), DeferredMeta(load))
    view = a[1:]
    assert calls == []  # nothing read yet
    assert view.meta == {"a": [1, 2]} and a.meta == {"a": [1, 2]}
    assert calls == [1]  # one load shared by the array and its view
    view.meta["a"].append(3)  # each keeps its own copy
    assert a.meta["a"] == [1, 2]
    import pickle
    b = pickle.loads(pickle.dumps(Array(np.zeros(2), DeferredMeta(lambda: {"k": 1}))))
    assert b.meta == {"k": 1}


def test_v2_imread_meta_from_disk_is_deferred_but_correct(tmp_path):
    import tifffile
    import imgio.v2 as v2
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, np.zeros((8, 9), np.uint8), description="hello")
    im = v2.imread(path)
    assert im.meta["ImageWidth"] == 9 and im.meta["description"] == "hello"
    with open(path, "rb") as fh:
        from_file = v2.imread(fh)  # file objects: read eagerly
    assert from_file.meta["ImageWidth"] == 9
