# cython: language_level=3
"""Volume-stacking kernel: copy one frame's bytes into a slice of a volume.

The kernel works on raw bytes so that one compiled routine serves every dtype.
Both buffers are presented as 3-D byte views ``(rows, cols, itemsize)``; the
innermost axis is always contiguous, the outer two may have any stride.  The
copy runs without the GIL, so threads can fill different slices at once.

The kernel neither allocates nor raises: shapes are checked by
``imgio._kernels.stack_frames`` before it is called.
"""
from libc.string cimport memcpy

cimport cython


@cython.boundscheck(False)
@cython.wraparound(False)
cpdef void copy_bytes3(const unsigned char[:, :, :] src,
                       unsigned char[:, :, :] dst) noexcept nogil:
    """Copy ``src`` into ``dst``.

    Precondition (checked by the wrapper): identical shapes, and a stride of 1
    along the innermost axis of both.
    """
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


cpdef void copy_contiguous(const unsigned char[::1] src,
                           unsigned char[::1] dst) noexcept nogil:
    """Copy one contiguous byte run into another of the same length (a memcpy)."""
    cdef Py_ssize_t n = src.shape[0]
    if n:
        memcpy(&dst[0], &src[0], <size_t>n)
