# cython: language_level=3
"""Volume-stacking kernel: copy one frame's bytes into a slice of a volume.

The kernel works on raw bytes so that one compiled routine serves every dtype.
Both buffers are presented as 3-D byte views ``(rows, cols, itemsize)``; the
innermost axis is contiguous, the outer two may have any stride.  The copy
runs without the GIL (``with nogil`` in the Python-callable wrappers: a
``cpdef ... nogil`` function called from Python would keep it), so threads can
fill different slices at once.

The kernels neither allocate nor raise: shapes are checked by
``imgio._kernels.copy_frame`` / ``stack_frames`` before they are called.
"""
from libc.string cimport memcpy

cimport cython


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _copy_bytes3(const unsigned char[:, :, :] src,
                       unsigned char[:, :, :] dst) noexcept nogil:
    cdef Py_ssize_t rows = src.shape[0]
    cdef Py_ssize_t cols = src.shape[1]
    cdef Py_ssize_t width = src.shape[2]
    cdef Py_ssize_t r, c
    if rows == 0 or cols == 0 or width == 0:
        return
    if (cols == 1 or (src.strides[1] == width and dst.strides[1] == width)):
        # each row is one contiguous run of cols * width bytes
        for r in range(rows):
            memcpy(&dst[r, 0, 0], &src[r, 0, 0], <size_t>(cols * width))
    else:
        for r in range(rows):
            for c in range(cols):
                memcpy(&dst[r, c, 0], &src[r, c, 0], <size_t>width)


def copy_bytes3(const unsigned char[:, :, :] src, unsigned char[:, :, :] dst):
    """Copy ``src`` into ``dst`` without the GIL.

    Precondition (checked by the wrapper): identical shapes, and a stride of 1
    along the innermost axis of both.
    """
    with nogil:
        _copy_bytes3(src, dst)


def copy_contiguous(const unsigned char[::1] src, unsigned char[::1] dst):
    """Copy one contiguous byte run into another of the same length, without the GIL."""
    cdef Py_ssize_t n = src.shape[0]
    if n:
        with nogil:
            memcpy(&dst[0], &src[0], <size_t>n)
