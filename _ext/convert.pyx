# cython: language_level=3
"""Pixel-buffer conversion kernels.

Every kernel takes typed memoryviews (``const`` for inputs, so read-only
buffers work).  The Python-callable entry points check sizes in O(1) and
raise ValueError, then run a nogil core that neither allocates nor raises.
The wrappers in ``imgio._kernels`` pick the rule, allocate the outputs and
present the data as 2-D strided views.

Byte order: the kernels that read numbers take a ``swap`` flag; the wrapper
passes a native-order *view* of a byte-swapped array (no copy) and ``swap=1``,
and the kernel reverses each item's bytes as it loads it.

``to_uint`` is two passes over the input, each a single fused loop:
``minmax2`` (finite min, finite max, and whether NaN/+inf/-inf occur), then
``scale2`` (load, swap, scale, round, saturate, store).  No temporaries.

Contiguous float rows, the real workload (issue 21: f8 -> u8 of 512 MiB), run
C loops built for the CPU at hand: min/max with AVX-512/AVX2/SSE2 intrinsics
picked at the first call, scaling compiled three times by ``target_clones``.
Against the best blockwise NumPy on 2 cores (np.min + np.max, then
subtract/divide/multiply/add-and-cast per 2 MiB block) this reads the data
twice instead of three times and does the arithmetic in one loop instead of
four ufunc calls (``benchmarks/test_bench_kernels.py``).
"""
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t,
                          uint8_t, uint16_t, uint32_t, uint64_t)
from libc.math cimport isfinite, isinf, isnan

cimport cython

# Contiguous float rows (the real workload: f8/f4 -> u8/u16) go through plain C
# loops compiled three times (AVX-512, AVX2, baseline) and picked at load time by
# GCC's ``target_clones`` (an ELF ifunc); the wheel's baseline is SSE2, where the
# double->int narrowing and min/max do not vectorize well, while NumPy dispatches
# its own loops to AVX-512 at run time.  Floating-point contraction is off: an
# FMA would round ``t * scale + 0.499999999`` once instead of twice and change
# results at the rounding boundary (imageio's arithmetic is two roundings).
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #  pragma GCC push_options
    #  pragma GCC optimize ("fp-contract=off")
    #  define IMGIO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #  define IMGIO_CLONES
    #endif
    #define IMGIO_PIECE (1 << 15)
    /* Fold p[:n] into *lo_/*hi_ (NaN skipped: min(x, lo) keeps lo when x is NaN, as
       MINPD does) and set *nan_ when a NaN occurs.  The compiler does not
       vectorize a min/max fold with NaN semantics by itself, so the x86 versions
       are written with intrinsics: four accumulators per bound, NaN found by an
       unordered compare of two loads at a time; AVX-512 and AVX2 are picked at
       the first call (__builtin_cpu_supports), SSE2 otherwise. */
    #define IMGIO_MINMAX_TAIL(T)                                                    \\
        for (; c < n; c++) {                                                         \\
            T a = p[c];                                                              \\
            l = a < l ? a : l; h = a > h ? a : h; if (a != a) bad = 1;               \\
        }                                                                            \\
        *lo_ = l; *hi_ = h; if (bad) *nan_ = 1;
    #define IMGIO_MINMAX_C(NAME, T)                                                 \\
    static void NAME(const T* p, Py_ssize_t n, T* lo_, T* hi_, int* nan_) {         \\
        T l = *lo_, h = *hi_; int bad = 0; Py_ssize_t c = 0;                         \\
        IMGIO_MINMAX_TAIL(T)                                                         \\
    }
    #if defined(__GNUC__) && defined(__x86_64__) && !defined(_MSC_VER)
    #include <immintrin.h>
    /* VT vector type, W lanes, P intrinsic prefix, S suffix (pd/ps) */
    #define IMGIO_MINMAX_SIMD(NAME, T, TGT, VT, W, LOAD, SET1, MIN, MAX, UNORD, ANY, RED)  \\
    __attribute__((target(TGT))) static void NAME(const T* p, Py_ssize_t n, T* lo_,     \\
                                                   T* hi_, int* nan_) {                 \\
        T l = *lo_, h = *hi_, tl[W], th[W]; int bad = 0, k; Py_ssize_t c = 0;            \\
        if (n >= 4 * W) {                                                                \\
            VT lo0 = SET1(l), lo1 = lo0, lo2 = lo0, lo3 = lo0;                           \\
            VT hi0 = SET1(h), hi1 = hi0, hi2 = hi0, hi3 = hi0;                           \\
            int any = 0;                                                                 \\
            for (; c + 4 * W <= n; c += 4 * W) {                                         \\
                VT a = LOAD(p + c), b = LOAD(p + c + W);                                 \\
                VT d = LOAD(p + c + 2 * W), e = LOAD(p + c + 3 * W);                     \\
                lo0 = MIN(a, lo0); hi0 = MAX(a, hi0);                                    \\
                lo1 = MIN(b, lo1); hi1 = MAX(b, hi1);                                    \\
                lo2 = MIN(d, lo2); hi2 = MAX(d, hi2);                                    \\
                lo3 = MIN(e, lo3); hi3 = MAX(e, hi3);                                    \\
                any |= ANY(UNORD(a, b)) | ANY(UNORD(d, e));                              \\
            }                                                                            \\
            lo0 = MIN(MIN(lo0, lo1), MIN(lo2, lo3));                                     \\
            hi0 = MAX(MAX(hi0, hi1), MAX(hi2, hi3));                                     \\
            RED(tl, lo0); RED(th, hi0);                                                  \\
            for (k = 0; k < W; k++) {                                                    \\
                l = tl[k] < l ? tl[k] : l; h = th[k] > h ? th[k] : h;                     \\
            }                                                                            \\
            if (any) bad = 1;                                                            \\
        }                                                                                \\
        IMGIO_MINMAX_TAIL(T)                                                             \\
    }
    #define IMGIO_U512D(a, b) _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q)
    #define IMGIO_U512S(a, b) _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)
    #define IMGIO_ANYM(m) ((int)((m) != 0))
    #define IMGIO_U256D(a, b) _mm256_cmp_pd(a, b, _CMP_UNORD_Q)
    #define IMGIO_U256S(a, b) _mm256_cmp_ps(a, b, _CMP_UNORD_Q)
    #define IMGIO_ANY256D(m) _mm256_movemask_pd(m)
    #define IMGIO_ANY256S(m) _mm256_movemask_ps(m)
    #define IMGIO_ANY128D(m) _mm_movemask_pd(m)
    #define IMGIO_ANY128S(m) _mm_movemask_ps(m)
    IMGIO_MINMAX_SIMD(imgio_minmax_f8_avx512, double, "avx512f", __m512d, 8, _mm512_loadu_pd,
                      _mm512_set1_pd, _mm512_min_pd, _mm512_max_pd, IMGIO_U512D, IMGIO_ANYM,
                      _mm512_storeu_pd)
    IMGIO_MINMAX_SIMD(imgio_minmax_f4_avx512, float, "avx512f", __m512, 16, _mm512_loadu_ps,
                      _mm512_set1_ps, _mm512_min_ps, _mm512_max_ps, IMGIO_U512S, IMGIO_ANYM,
                      _mm512_storeu_ps)
    IMGIO_MINMAX_SIMD(imgio_minmax_f8_avx2, double, "avx2", __m256d, 4, _mm256_loadu_pd,
                      _mm256_set1_pd, _mm256_min_pd, _mm256_max_pd, IMGIO_U256D, IMGIO_ANY256D,
                      _mm256_storeu_pd)
    IMGIO_MINMAX_SIMD(imgio_minmax_f4_avx2, float, "avx2", __m256, 8, _mm256_loadu_ps,
                      _mm256_set1_ps, _mm256_min_ps, _mm256_max_ps, IMGIO_U256S, IMGIO_ANY256S,
                      _mm256_storeu_ps)
    IMGIO_MINMAX_SIMD(imgio_minmax_f8_sse2, double, "sse2", __m128d, 2, _mm_loadu_pd,
                      _mm_set1_pd, _mm_min_pd, _mm_max_pd, _mm_cmpunord_pd, IMGIO_ANY128D,
                      _mm_storeu_pd)
    IMGIO_MINMAX_SIMD(imgio_minmax_f4_sse2, float, "sse2", __m128, 4, _mm_loadu_ps,
                      _mm_set1_ps, _mm_min_ps, _mm_max_ps, _mm_cmpunord_ps, IMGIO_ANY128S,
                      _mm_storeu_ps)
    typedef void (*imgio_mm_f8_t)(const double*, Py_ssize_t, double*, double*, int*);
    typedef void (*imgio_mm_f4_t)(const float*, Py_ssize_t, float*, float*, int*);
    static imgio_mm_f8_t imgio_mm_f8 = 0;
    static imgio_mm_f4_t imgio_mm_f4 = 0;
    static void imgio_pick_minmax(void) {  /* benign race: every thread picks the same */
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) {
            imgio_mm_f4 = imgio_minmax_f4_avx512; imgio_mm_f8 = imgio_minmax_f8_avx512;
        } else if (__builtin_cpu_supports("avx2")) {
            imgio_mm_f4 = imgio_minmax_f4_avx2; imgio_mm_f8 = imgio_minmax_f8_avx2;
        } else {
            imgio_mm_f4 = imgio_minmax_f4_sse2; imgio_mm_f8 = imgio_minmax_f8_sse2;
        }
    }
    static void imgio_minmax_f8(const double* p, Py_ssize_t n, double* lo, double* hi,
                                int* nan) {
        if (!imgio_mm_f8) imgio_pick_minmax();
        imgio_mm_f8(p, n, lo, hi, nan);
    }
    static void imgio_minmax_f4(const float* p, Py_ssize_t n, float* lo, float* hi,
                                int* nan) {
        if (!imgio_mm_f4) imgio_pick_minmax();
        imgio_mm_f4(p, n, lo, hi, nan);
    }
    static int imgio_force_minmax(const char* isa) {  /* tests: 0 ok, -1 unsupported */
        __builtin_cpu_init();
        if (!strcmp(isa, "avx512f") && __builtin_cpu_supports("avx512f")) {
            imgio_mm_f4 = imgio_minmax_f4_avx512; imgio_mm_f8 = imgio_minmax_f8_avx512;
        } else if (!strcmp(isa, "avx2") && __builtin_cpu_supports("avx2")) {
            imgio_mm_f4 = imgio_minmax_f4_avx2; imgio_mm_f8 = imgio_minmax_f8_avx2;
        } else if (!strcmp(isa, "sse2")) {
            imgio_mm_f4 = imgio_minmax_f4_sse2; imgio_mm_f8 = imgio_minmax_f8_sse2;
        } else if (!strcmp(isa, "auto")) {
            imgio_pick_minmax();
        } else return -1;
        return 0;
    }
    static const char* imgio_minmax_isa(void) {
        if (!imgio_mm_f8) imgio_pick_minmax();
        return imgio_mm_f8 == imgio_minmax_f8_avx512 ? "avx512f"
             : imgio_mm_f8 == imgio_minmax_f8_avx2 ? "avx2" : "sse2";
    }
    #else
    IMGIO_MINMAX_C(imgio_minmax_f8, double)
    IMGIO_MINMAX_C(imgio_minmax_f4, float)
    static const char* imgio_minmax_isa(void) { return "c"; }
    static int imgio_force_minmax(const char* isa) { return strcmp(isa, "c") && strcmp(isa, "auto") ? -1 : 0; }
    #endif

    /* d[:n] = sat((s - off) / rng * scale + 0.499999999) (unit: s * scale + ...),
       saturated to [0, top] (NaN -> 0), truncated: imageio's arithmetic. */
    #define IMGIO_SCALE(NAME, ST, DT)                                                \\
    IMGIO_CLONES static void NAME(const ST* s, DT* d, Py_ssize_t n, int unit,        \\
                                  double off, double rng, double scale, double top) { \\
        Py_ssize_t c, b, e;                                                          \\
        /* back to front in 256 KiB pieces: the end of the row, read last by the   \\
           min/max pass, is still in the cache */                                  \\
        for (e = n; e > 0; e = b) {                                                  \\
        b = e > IMGIO_PIECE ? e - IMGIO_PIECE : 0;                                   \\
        if (unit) {                                                                  \\
            for (c = b; c < e; c++) {                                                \\
                double v = (double)s[c] * scale + 0.499999999;                       \\
                v = v > 0.0 ? v : 0.0; v = v < top ? v : top;                        \\
                d[c] = (DT)(int32_t)v;                                               \\
            }                                                                        \\
        } else {                                                                     \\
            for (c = b; c < e; c++) {                                                \\
                double v = ((double)s[c] - off) / rng * scale + 0.499999999;         \\
                v = v > 0.0 ? v : 0.0; v = v < top ? v : top;                        \\
                d[c] = (DT)(int32_t)v;                                               \\
            }                                                                        \\
        }                                                                            \\
        }                                                                            \\
    }
    IMGIO_SCALE(imgio_scale_f8_u1, double, uint8_t)
    IMGIO_SCALE(imgio_scale_f8_u2, double, uint16_t)
    IMGIO_SCALE(imgio_scale_f4_u1, float, uint8_t)
    IMGIO_SCALE(imgio_scale_f4_u2, float, uint16_t)
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #  pragma GCC pop_options
    #endif
    """
    const char* imgio_minmax_isa() noexcept nogil
    int imgio_force_minmax(const char* isa) noexcept nogil
    void imgio_minmax_f8(const double* p, Py_ssize_t n, double* lo, double* hi,
                         int* nan) noexcept nogil
    void imgio_minmax_f4(const float* p, Py_ssize_t n, float* lo, float* hi,
                         int* nan) noexcept nogil
    void imgio_scale_f8_u1(const double* s, uint8_t* d, Py_ssize_t n, int unit, double off,
                           double rng, double scale, double top) noexcept nogil
    void imgio_scale_f8_u2(const double* s, uint16_t* d, Py_ssize_t n, int unit, double off,
                           double rng, double scale, double top) noexcept nogil
    void imgio_scale_f4_u1(const float* s, uint8_t* d, Py_ssize_t n, int unit, double off,
                           double rng, double scale, double top) noexcept nogil
    void imgio_scale_f4_u2(const float* s, uint16_t* d, Py_ssize_t n, int unit, double off,
                           double rng, double scale, double top) noexcept nogil

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
    cdef int cnan = 0
    if src_t is double or src_t is float:  # the dispatched C loop (see the top)
        if src_t is double:
            imgio_minmax_f8(p, n, lo_, hi_, &cnan)
        elif src_t is float:
            imgio_minmax_f4(p, n, lo_, hi_, &cnan)
        if cnan and not isinf(lo_[0]) and not isinf(hi_[0]):
            nan_[0] = 1
        return
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
        if mode == MODE_UNIT or mode == MODE_RANGE:  # floats: the dispatched C loops
            if src_t is double:
                if dst_t is uint8_t:
                    imgio_scale_f8_u1(s, d, n, mode == MODE_UNIT, offset, rng, scale, top)
                elif dst_t is uint16_t:
                    imgio_scale_f8_u2(s, d, n, mode == MODE_UNIT, offset, rng, scale, top)
                return
            elif src_t is float:
                if dst_t is uint8_t:
                    imgio_scale_f4_u1(s, d, n, mode == MODE_UNIT, offset, rng, scale, top)
                elif dst_t is uint16_t:
                    imgio_scale_f4_u2(s, d, n, mode == MODE_UNIT, offset, rng, scale, top)
                return
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


# -- Python entry points: sizes checked in O(1), then the GIL released --------------
# (a ``cpdef ... nogil`` function called from Python keeps the GIL; these do not)

cdef _check_strides2(const char* name, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t item):
    if s0 % item or s1 % item:
        raise ValueError(f"{name.decode()}: strides ({s0}, {s1}) are not multiples of the "
                         f"item size {item}")


cdef _check_folds(const char* name, Py_ssize_t nlohi, Py_ssize_t nflags):
    if nlohi < 2 or nflags < 4:
        raise ValueError(f"{name.decode()}: lohi needs 2 items and flags 4, got "
                         f"{nlohi} and {nflags}")


def minmax2(const src_t[:, :] src, bint swap, src_t[::1] lohi, int64_t[::1] flags):
    """Fold ``src`` into ``lohi = (min, max)`` and ``flags`` (see ``_minmax2``).

    Releases the GIL.  ValueError unless ``lohi`` has 2 items, ``flags`` 4 and
    the strides of ``src`` are multiples of its item size.
    """
    _check_folds(b"minmax2", lohi.shape[0], flags.shape[0])
    _check_strides2(b"minmax2", src.strides[0], src.strides[1], sizeof(src_t))
    with nogil:
        _minmax2(src, swap, lohi, flags)


def minmax_finite2(const src_t[:, :] src, bint swap, src_t[::1] lohi, int64_t[::1] flags):
    """``minmax2`` skipping infinities (see ``_minmax_finite2``); releases the GIL."""
    _check_folds(b"minmax_finite2", lohi.shape[0], flags.shape[0])
    _check_strides2(b"minmax_finite2", src.strides[0], src.strides[1], sizeof(src_t))
    with nogil:
        _minmax_finite2(src, swap, lohi, flags)


def scale2(const src_t[:, :] src, bint swap, dst_t[:, :] dst, int mode,
           double offset, double rng, double scale, int shift):
    """``dst = convert(src)`` by ``mode`` (see ``_scale2``); releases the GIL.

    ValueError unless ``src`` and ``dst`` have the same shape, strides that are
    multiples of their item sizes, ``mode`` is one of the MODE_* constants and,
    for ``MODE_SHIFT``, ``src`` holds unsigned integers and
    ``0 <= shift < bits``.
    """
    if src.shape[0] != dst.shape[0] or src.shape[1] != dst.shape[1]:
        raise ValueError(f"scale2: src has shape ({src.shape[0]}, {src.shape[1]}), dst "
                         f"({dst.shape[0]}, {dst.shape[1]})")
    _check_strides2(b"scale2", src.strides[0], src.strides[1], sizeof(src_t))
    _check_strides2(b"scale2", dst.strides[0], dst.strides[1], sizeof(dst_t))
    if mode < MODE_UNIT or mode > MODE_CLIP:
        raise ValueError(f"scale2: unknown mode {mode}")
    if mode == MODE_SHIFT:
        if src_t is float or src_t is double or src_t is int8_t or src_t is int16_t \
                or src_t is int32_t or src_t is int64_t:
            raise ValueError("scale2: MODE_SHIFT needs unsigned integers")
        if shift < 0 or shift >= 8 * <int>sizeof(src_t):
            raise ValueError(f"scale2: shift {shift} outside [0, {8 * sizeof(src_t)})")
    with nogil:
        _scale2(src, swap, dst, mode, offset, rng, scale, shift)


def simd_isa():
    """The instruction set the min/max loops of contiguous float rows use here
    (``"avx512f"``, ``"avx2"``, ``"sse2"``, or ``"c"`` off x86-64/GCC)."""
    return imgio_minmax_isa().decode()


def _force_simd_isa(str isa):
    """Tests only: run the min/max loops with ``isa`` (``"auto"`` restores the pick).
    ValueError when this CPU lacks it.  Not thread-safe against running kernels."""
    if imgio_force_minmax(isa.encode()) != 0:
        raise ValueError(f"this CPU or build has no {isa!r} min/max loop")
