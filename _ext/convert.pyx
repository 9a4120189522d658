# cython: language_level=3
"""Pixel-buffer conversion kernels.

Every kernel takes typed memoryviews (``const`` for inputs, so read-only
buffers work), runs without the GIL, and neither allocates nor raises.  The
validating wrappers in ``imgio._kernels`` check dtypes and shapes, allocate
the outputs and present the data as 2-D (or 3-D) strided views.

Byte order: the kernels that read numbers take a ``swap`` flag; the wrapper
passes a native-order *view* of a byte-swapped array (no copy) and ``swap=1``,
and the kernel reverses each item's bytes as it loads it.

``to_uint`` is two passes over the input, each a single fused loop:
``minmax2`` (finite min, finite max, and whether NaN/+inf/-inf occur), then
``scale2`` (load, swap, scale, round, saturate, store).  No temporaries.
"""
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t,
                          uint8_t, uint16_t, uint32_t, uint64_t)
from libc.math cimport isfinite, isinf, isnan

cimport cython

ctypedef fused src_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t
    int8_t
    int16_t
    int32_t
    int64_t
    float
    double

ctypedef fused dst_t:
    uint8_t
    uint16_t

ctypedef fused word_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

# scale2 modes (mirrored in imgio._kernels)
cdef enum:
    MODE_UNIT = 0    # float in [0, 1]:   x * scale + 0.499999999
    MODE_RANGE = 1   # min..max:          (x - offset) / rng * scale + 0.499999999
    MODE_SHIFT = 2   # unsigned ints:     x >> shift
    MODE_CLIP = 3    # as is, saturated:  clip(x, 0, top), truncated toward zero

# imageio rounds by adding 0.499999999 before truncating; written as a literal
# below (a module-level variable could alias the uint8 output and block SIMD)


cdef inline src_t _load(const src_t* p, bint swap) noexcept nogil:
    """``*p``, with its bytes reversed when ``swap`` (compiles to bswap)."""
    cdef src_t v
    cdef const unsigned char* s
    cdef unsigned char* d
    cdef Py_ssize_t k
    if not swap:
        return p[0]
    s = <const unsigned char*>p
    d = <unsigned char*>&v
    for k in range(<Py_ssize_t>sizeof(src_t)):
        d[k] = s[<Py_ssize_t>sizeof(src_t) - 1 - k]
    return v


cdef inline word_t _bswap(word_t v) noexcept nogil:
    cdef word_t r = 0
    cdef Py_ssize_t k
    for k in range(<Py_ssize_t>sizeof(word_t)):
        r = <word_t>((r << 8) | (v & 0xFF))
        v = <word_t>(v >> 8)
    return r


cdef inline double _sat(double x, double top) noexcept nogil:
    """``x`` saturated to ``[0, top]``; NaN gives 0 (branch-free, vectorizes)."""
    x = x if x > 0.0 else 0.0
    return x if x < top else top


cdef inline void _fold_lanes(const src_t* p, Py_ssize_t n, src_t* lo_, src_t* hi_,
                        bint* nan_) noexcept nogil:
    """Fold ``p[:n]`` into ``*lo_``/``*hi_`` (NaN skipped, flagged in ``*nan_``).

    Eight independent lanes per bound, written so that the compiler turns each
    group of eight into packed min/max instructions (``x < lo ? x : lo`` is
    exactly MINPD on x86, NaN keeps ``lo``).  Floats also sum ``x * 0.0`` per
    lane, which stays 0 for finite values and becomes NaN for NaN or +-inf: a
    NaN flag without a branch per item.  Infinities show up in the bounds, and
    then the caller re-folds with ``_minmax_finite2``, which flags NaN itself.
    """
    cdef src_t lo[8]
    cdef src_t hi[8]
    cdef double z[8]
    cdef src_t a, l, h
    cdef double zs = 0.0
    cdef Py_ssize_t c = 0, k
    for k in range(8):
        lo[k] = lo_[0]
        hi[k] = hi_[0]
        z[k] = 0.0
    while c + 8 <= n:
        for k in range(8):
            a = p[c + k]
            lo[k] = a if a < lo[k] else lo[k]
            hi[k] = a if a > hi[k] else hi[k]
            if src_t is float or src_t is double:
                z[k] += (<double>a) * 0.0
        c += 8
    while c < n:
        a = p[c]
        lo[0] = a if a < lo[0] else lo[0]
        hi[0] = a if a > hi[0] else hi[0]
        if src_t is float or src_t is double:
            z[0] += (<double>a) * 0.0
        c += 1
    l = lo[0]
    h = hi[0]
    for k in range(1, 8):
        l = lo[k] if lo[k] < l else l
        h = hi[k] if hi[k] > h else h
        zs += z[k]
    lo_[0] = l
    hi_[0] = h
    if src_t is float or src_t is double:
        zs += z[0]
        if zs != zs and not isinf(l) and not isinf(h):
            nan_[0] = 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _minmax2(const src_t[:, :] src, bint swap, src_t[::1] lohi,
                   int64_t[::1] flags) noexcept nogil:
    """One pass: fold ``src`` into ``lohi = (min, max)`` and ``flags``.

    The caller seeds ``lohi`` with ``(largest, smallest)`` of the type (+inf and
    -inf for floats), so blocks of a volume that is not one 2-D view fold into
    the same result and an empty input leaves ``lo > hi``.  NaN is skipped and
    sets ``flags[1]``; infinities are included (the wrapper then calls
    ``minmax_finite2``).  Precondition: ``lohi`` has 2 items, ``flags`` 4.
    """
    cdef Py_ssize_t rows = src.shape[0], cols = src.shape[1], r, c
    cdef Py_ssize_t ss = src.strides[1] // <Py_ssize_t>sizeof(src_t)
    cdef const src_t* p
    cdef src_t v, lo = lohi[0], hi = lohi[1]
    cdef bint nan = 0
    if rows == 0 or cols == 0:
        return
    for r in range(rows):
        p = &src[r, 0]
        if swap:
            for c in range(cols):
                v = _load(p + c * ss, 1)
                lo = v if v < lo else lo
                hi = v if v > hi else hi
                if src_t is float or src_t is double:
                    nan |= v != v
        elif ss == 1:  # contiguous: eight independent lanes, packed min/max
            _fold_lanes(p, cols, &lo, &hi, &nan)
        else:
            for c in range(cols):
                v = p[c * ss]
                lo = v if v < lo else lo
                hi = v if v > hi else hi
                if src_t is float or src_t is double:
                    nan |= v != v
    lohi[0] = lo
    lohi[1] = hi
    if nan:
        flags[1] = 1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _minmax_finite2(const src_t[:, :] src, bint swap, src_t[::1] lohi,
                          int64_t[::1] flags) noexcept nogil:
    """Like ``minmax2`` but skipping infinities, flagged in ``flags[2]`` (+inf)
    and ``flags[3]`` (-inf).  The slow path, for data that hold infinities."""
    cdef Py_ssize_t rows = src.shape[0], cols = src.shape[1], r, c
    cdef src_t v, lo = lohi[0], hi = lohi[1]
    for r in range(rows):
        for c in range(cols):
            v = _load(&src[r, c], swap)
            if src_t is float or src_t is double:
                if not isfinite(v):
                    if isnan(v):
                        flags[1] = 1
                    elif v > 0:
                        flags[2] = 1
                    else:
                        flags[3] = 1
                    continue
            lo = v if v < lo else lo
            hi = v if v > hi else hi
    lohi[0] = lo
    lohi[1] = hi


cdef inline void _scale_row(const src_t* s, Py_ssize_t ss, dst_t* d, Py_ssize_t ds,
                            Py_ssize_t n, bint swap, int mode, double offset,
                            double rng, double scale, int shift,
                            double top) noexcept nogil:
    """One row of ``scale2``; the mode and byte order are decided once per row."""
    cdef Py_ssize_t c, k, m
    cdef int32_t tmp[256]
    cdef src_t v
    if swap:
        for c in range(n):
            v = _load(s + c * ss, 1)
            if mode == MODE_SHIFT:
                if src_t is float or src_t is double:
                    pass
                else:
                    d[c * ds] = <dst_t>(v >> shift)
            elif mode == MODE_UNIT:
                d[c * ds] = <dst_t>_sat((<double>v) * scale + 0.499999999, top)
            elif mode == MODE_RANGE:
                d[c * ds] = <dst_t>_sat(((<double>v) - offset) / rng * scale + 0.499999999, top)
            else:
                d[c * ds] = <dst_t>_sat(<double>v, top)
        return
    if ss == 1 and ds == 1:  # contiguous rows: the loops the compiler vectorizes
        if mode == MODE_SHIFT:
            if src_t is float or src_t is double:
                pass
            else:
                for c in range(n):
                    d[c] = <dst_t>(s[c] >> shift)
        elif mode == MODE_UNIT or mode == MODE_RANGE:
            # 256 items at a time through an int32 buffer: the double loop and
            # the narrowing loop each vectorize, which the fused loop does not
            # (8x256x256 f8 -> u8 on SSE2: 0.67 ms -> 0.53 ms)
            c = 0
            while c < n:
                m = n - c if n - c < 256 else 256
                if mode == MODE_UNIT:
                    for k in range(m):
                        tmp[k] = <int32_t>_sat((<double>s[c + k]) * scale + 0.499999999, top)
                else:
                    for k in range(m):
                        tmp[k] = <int32_t>_sat(((<double>s[c + k]) - offset) / rng * scale
                                               + 0.499999999, top)
                for k in range(m):
                    d[c + k] = <dst_t>tmp[k]
                c += m
        else:
            for c in range(n):
                d[c] = <dst_t>_sat(<double>s[c], top)
        return
    if mode == MODE_SHIFT:
        if src_t is float or src_t is double:
            pass
        else:
            for c in range(n):
                d[c * ds] = <dst_t>(s[c * ss] >> shift)
    elif mode == MODE_UNIT:
        for c in range(n):
            d[c * ds] = <dst_t>_sat((<double>s[c * ss]) * scale + 0.499999999, top)
    elif mode == MODE_RANGE:
        for c in range(n):
            d[c * ds] = <dst_t>_sat(((<double>s[c * ss]) - offset) / rng * scale + 0.499999999, top)
    else:
        for c in range(n):
            d[c * ds] = <dst_t>_sat(<double>s[c * ss], top)


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
cdef void _scale2(const src_t[:, :] src, bint swap, dst_t[:, :] dst, int mode,
                  double offset, double rng, double scale, int shift) noexcept nogil:
    """One pass: ``dst = convert(src)`` by ``mode`` (see the MODE_* constants).

    Every result is saturated to ``[0, top]`` (255 or 65535); NaN gives 0,
    +inf gives ``top``, -inf gives 0.  Precondition: equal shapes, strides that
    are multiples of the item sizes; for ``MODE_SHIFT`` an unsigned integer
    ``src_t`` and ``0 <= shift < bits``.
    """
    cdef Py_ssize_t rows = src.shape[0], cols = src.shape[1], r
    cdef Py_ssize_t ss = src.strides[1] // <Py_ssize_t>sizeof(src_t)
    cdef Py_ssize_t ds = dst.strides[1] // <Py_ssize_t>sizeof(dst_t)
    cdef double top
    if dst_t is uint8_t:
        top = 255.0
    else:
        top = 65535.0
    if rows == 0 or cols == 0:
        return
    for r in range(rows):
        _scale_row(&src[r, 0], ss, &dst[r, 0], ds, cols, swap, mode, offset, rng,
                   scale, shift, top)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _swap2(const word_t[:, :] src, word_t[:, :] dst) noexcept nogil:
    """``dst = src`` with each item's bytes reversed.  Precondition: equal shapes."""
    cdef Py_ssize_t rows = src.shape[0], cols = src.shape[1], r, c
    for r in range(rows):
        for c in range(cols):
            dst[r, c] = _bswap(src[r, c])


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _bool2(const uint8_t[:, :] src, uint8_t[:, :] dst,
                 uint8_t true_value) noexcept nogil:
    """``dst = true_value where src != 0 else 0``.  Precondition: equal shapes."""
    cdef Py_ssize_t rows = src.shape[0], cols = src.shape[1], r, c
    for r in range(rows):
        for c in range(cols):
            dst[r, c] = true_value if src[r, c] != 0 else 0


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _planar_to_interleaved3(const word_t[:, :, :] src,
                                  word_t[:, :, :] dst) noexcept nogil:
    """``dst[h, w, c] = src[c, h, w]``.  Precondition: matching shapes."""
    cdef Py_ssize_t nc = src.shape[0], nh = src.shape[1], nw = src.shape[2]
    cdef Py_ssize_t c, h, w
    for h in range(nh):
        for w in range(nw):
            for c in range(nc):
                dst[h, w, c] = src[c, h, w]


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _interleaved_to_planar3(const word_t[:, :, :] src,
                                  word_t[:, :, :] dst) noexcept nogil:
    """``dst[c, h, w] = src[h, w, c]``.  Precondition: matching shapes."""
    cdef Py_ssize_t nh = src.shape[0], nw = src.shape[1], nc = src.shape[2]
    cdef Py_ssize_t c, h, w
    for c in range(nc):
        for h in range(nh):
            for w in range(nw):
                dst[c, h, w] = src[h, w, c]



# -- Python entry points: the same calls, with the GIL released ---------------------
# (a ``cpdef ... nogil`` function called from Python keeps the GIL; these do not)

def minmax2(const src_t[:, :] src, bint swap, src_t[::1] lohi, int64_t[::1] flags):
    """See ``_minmax2``."""
    with nogil:
        _minmax2(src, swap, lohi, flags)


def minmax_finite2(const src_t[:, :] src, bint swap, src_t[::1] lohi, int64_t[::1] flags):
    """See ``_minmax_finite2``."""
    with nogil:
        _minmax_finite2(src, swap, lohi, flags)


def scale2(const src_t[:, :] src, bint swap, dst_t[:, :] dst, int mode,
           double offset, double rng, double scale, int shift):
    """See ``_scale2``."""
    with nogil:
        _scale2(src, swap, dst, mode, offset, rng, scale, shift)


def swap2(const word_t[:, :] src, word_t[:, :] dst):
    """See ``_swap2``."""
    with nogil:
        _swap2(src, dst)


def bool2(const uint8_t[:, :] src, uint8_t[:, :] dst, uint8_t true_value):
    """See ``_bool2``."""
    with nogil:
        _bool2(src, dst, true_value)


def planar_to_interleaved3(const word_t[:, :, :] src, word_t[:, :, :] dst):
    """See ``_planar_to_interleaved3``."""
    with nogil:
        _planar_to_interleaved3(src, dst)


def interleaved_to_planar3(const word_t[:, :, :] src, word_t[:, :, :] dst):
    """See ``_interleaved_to_planar3``."""
    with nogil:
        _interleaved_to_planar3(src, dst)
