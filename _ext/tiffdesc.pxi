# Included by tiffparse.pyx: tag tables and the analysis of ImageDescription /
# Software values (what tifffile would make of them).  All nogil, no allocation.

cdef int _is_safe_tag(uint64_t tag) noexcept nogil:
    """Tags that never change how tifffile shapes or decodes a single page."""
    if 262 <= tag <= 265 or 268 <= tag <= 269 or 271 <= tag <= 272:
        return 1
    if tag == 274 or 280 <= tag <= 283 or 285 <= tag <= 291:
        return 1
    if tag == 296 or tag == 297 or tag == 301 or 306 <= tag <= 319:
        return 1
    if tag == 332 or tag == 340 or tag == 341:
        return 1
    if tag == 700 or tag == 33432 or tag == 33723 or tag == 34377:
        return 1
    if tag == 34665 or tag == 34675 or tag == 34853 or tag == 40965:
        return 1
    return 0


cdef int _is_flavour_tag(uint64_t tag) noexcept nogil:
    """Tags whose presence makes tifffile treat the file as a special flavour."""
    if 33628 <= tag <= 33631:          # MetaMorph STK UIC1-4
        return 1
    if tag == 34412 or tag == 34361 or tag == 34362 or tag == 43314:  # LSM, FluoView, NIH
        return 1
    if tag == 33445 or tag == 37701 or tag == 50288:    # MD gel, Agilent, MediaCy
        return 1
    if tag == 51123 or tag == 37706 or tag == 34680 or tag == 34682:  # uManager, TVIPS, FEI
        return 1
    if tag == 34118 or tag == 33560 or tag == 33471 or tag == 65420:  # SEM, SIS, NDPI
        return 1
    if tag == 50706 or tag == 37398 or tag == 34735 or tag == 42112:  # DNG, EP, Geo, GDAL
        return 1
    if 4864 <= tag <= 5030 or tag >= 65000:             # Andor, Nuvu, EER, AVS
        return 1
    return 0


cdef inline int _startswith(const uint8_t* s, uint64_t n, const char* pre) noexcept nogil:
    cdef uint64_t i = 0
    while pre[i] != 0:
        if i >= n or s[i] != <uint8_t>pre[i]:
            return 0
        i += 1
    return 1


cdef int _contains(const uint8_t* s, uint64_t n, const char* sub) noexcept nogil:
    cdef uint64_t m = 0, i
    while sub[m] != 0:
        m += 1
    if m == 0:
        return 1
    if n < m:
        return 0
    for i in range(n - m + 1):
        if _startswith(s + i, n - i, sub):
            return 1
    return 0


cdef int64_t _find(const uint8_t* s, uint64_t n, const char* sub) noexcept nogil:
    cdef uint64_t m = 0, i
    while sub[m] != 0:
        m += 1
    if n < m:
        return -1
    for i in range(n - m + 1):
        if _startswith(s + i, n - i, sub):
            return <int64_t>i
    return -1


cdef inline int _isspace(uint8_t c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13 or c == 11 or c == 12


cdef inline int _isjsonspace(uint8_t c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


cdef int64_t _parse_ints(const uint8_t* s, uint64_t n, uint8_t close, int json,
                         Info* info) noexcept nogil:
    """Parse ``a, b, c<close>`` into ``info.shaped``; the index after ``close``, or -1.

    ``json``: JSON's rules (no leading zeros, JSON whitespace only).
    """
    cdef uint64_t i = 0
    cdef int64_t v
    cdef int digits
    info.shaped_ndim = 0
    while True:
        while i < n and (_isjsonspace(s[i]) if json else _isspace(s[i])):
            i += 1
        if i < n and s[i] == close and info.shaped_ndim == 0:
            return <int64_t>i + 1
        v = 0
        digits = 0
        if json and i + 1 < n and s[i] == 48 and 48 <= s[i + 1] <= 57:
            return -1   # a leading zero is not JSON: tifffile's json.loads fails
        while i < n and 48 <= s[i] <= 57:
            if v > <int64_t>100000000000000:
                return -1
            v = v * 10 + (s[i] - 48)
            digits += 1
            i += 1
        if digits == 0 or info.shaped_ndim >= MAXDIM:
            return -1
        info.shaped[info.shaped_ndim] = v
        info.shaped_ndim += 1
        while i < n and (_isjsonspace(s[i]) if json else _isspace(s[i])):
            i += 1
        if i >= n:
            return -1
        if s[i] == close:
            return <int64_t>i + 1
        if s[i] != 44:  # ','
            return -1
        i += 1


cdef int64_t _imagej_value(const uint8_t* s, uint64_t n, const char* key) noexcept nogil:
    """Integer value of ``\\n<key>=`` in an ImageJ description (-1 if absent/odd)."""
    cdef int64_t pos = _find(s, n, key)
    cdef uint64_t i
    cdef int64_t v = 0
    if pos < 0:
        return -1
    i = <uint64_t>pos
    while i < n and s[i] != 61:  # '='
        i += 1
    i += 1
    if i >= n or not (48 <= s[i] <= 57):
        return 1000000  # unparsable: treat as "changes the shape"
    while i < n and 48 <= s[i] <= 57 and v < 1000000000:
        v = v * 10 + (s[i] - 48)
        i += 1
    if i < n and s[i] != 10:
        # tifffile int()s the rest of the line: anything but digits leaves it a
        # string (and its ImageJ series raises): treat as "changes the shape"
        return 1000000
    return v


cdef void _analyse_description(const uint8_t* s, uint64_t n, Info* info) noexcept nogil:
    cdef int64_t pos, v
    cdef uint64_t i, e
    # tifffile strips trailing NULs (and decodes); mimic the emptiness test
    while n > 0 and s[n - 1] == 0:
        n -= 1
    if n == 0:
        info.desc_kind = D_NONE
        return
    if _startswith(s, n, b"ImageJ=") or _startswith(s, n, b"SCIFIO="):
        info.desc_kind = D_IMAGEJ
        info.imagej_nd = 0
        v = _imagej_value(s, n, b"\nimages=")
        if v > info.imagej_nd:
            info.imagej_nd = v
        v = _imagej_value(s, n, b"\nchannels=")
        if v > info.imagej_nd:
            info.imagej_nd = v
        v = _imagej_value(s, n, b"\nslices=")
        if v > info.imagej_nd:
            info.imagej_nd = v
        v = _imagej_value(s, n, b"\nframes=")
        if v > info.imagej_nd:
            info.imagej_nd = v
        return
    if _contains(s, n, b'"mibi.'):
        info.desc_kind = D_OTHER
        return
    if s[0] == 123 and _contains(s, n, b'"shape":'):   # '{'
        # tifffile json.loads this and raises if it is not JSON; only the canonical
        # '{"shape": [a, b, ...]}' is verified here, any other JSON is tifffile's
        info.desc_kind = D_SHAPED
        i = 1
        while i < n and _isjsonspace(s[i]):
            i += 1
        if not _startswith(s + i, n - i, b'"shape":'):
            info.desc_kind = D_OTHER
            return
        i += 8
        while i < n and _isjsonspace(s[i]):
            i += 1
        if i >= n or s[i] != 91:
            info.desc_kind = D_BADSHAPE
            return
        pos = _parse_ints(s + i + 1, n - i - 1, 93, 1, info)
        if pos < 0:
            info.desc_kind = D_BADSHAPE
            return
        i = i + 1 + <uint64_t>pos
        while i < n and _isjsonspace(s[i]):
            i += 1
        if i >= n or s[i] != 125:   # '}'
            info.desc_kind = D_OTHER if i < n and s[i] == 44 else D_BADSHAPE
            return
        i += 1
        while i < n and _isjsonspace(s[i]):
            i += 1
        if i != n:
            info.desc_kind = D_BADSHAPE
        return
    if _startswith(s, n, b"shape="):
        # tifffile: int() of each comma-separated item of description[7:-1]
        info.desc_kind = D_SHAPED
        if n < 8 or s[6] != 40 or _parse_ints(s + 7, n - 7, 41, 0, info) != <int64_t>(n - 7):
            info.desc_kind = D_BADSHAPE
        return
    # tail tests on the last 10 characters with whitespace stripped
    e = n
    while e > 0 and _isspace(s[e - 1]):
        e -= 1
    i = n - 10 if n > 10 else 0
    if e > i and ((e - i >= 4 and _startswith(s + e - 4, 4, b"OME>"))):
        info.desc_kind = D_OME
        return
    if e > i and e - i >= 6 and _startswith(s + e - 6, 6, b"</scn>"):
        info.desc_kind = D_OTHER
        return
    if (s[0] == 60 or s[0] == 91 or s[0] == 123        # '<' '[' '{'
            or _startswith(s, n, b"Aperio ") or _startswith(s, n, b"state.")
            or _startswith(s, n, b"SIMPLE ") or _startswith(s, n, b"# ")
            or _startswith(s, n, b"EPICS") or _startswith(s, n, b"Label")
            or _startswith(s, n, b"Probability_Image")
            or _contains(s if n <= 256 else s + n - 256, n if n <= 256 else 256,
                         b"scanimage.SI")):
        info.desc_kind = D_OTHER
        return
    info.desc_kind = D_PLAIN


cdef void _analyse_second(const uint8_t* s, uint64_t n, Info* info) noexcept nogil:
    cdef Info tmp
    cdef int i
    memset_info(&tmp)
    _analyse_description(s, n, &tmp)
    info.desc2_kind = tmp.desc_kind
    if tmp.desc_kind == D_SHAPED and not info.has_shaped:
        info.has_shaped = 1
        info.shaped_ndim = tmp.shaped_ndim
        for i in range(tmp.shaped_ndim):
            info.shaped[i] = tmp.shaped[i]
    if tmp.imagej_nd > info.imagej_nd:
        info.imagej_nd = tmp.imagej_nd


cdef void _analyse_software(const uint8_t* s, uint64_t n, Info* info) noexcept nogil:
    if (_startswith(s, n, b"ISS Vista") or _startswith(s, n, b"MetaSeries")
            or _startswith(s, n, b"TVX TIFF") or _startswith(s, n, b"EPICS")
            or _startswith(s, n, b"SI.") or _startswith(s, n, b"IndicaLabs")
            or _startswith(s, n, b"PerkinElmer-QPI") or _startswith(s, n, b"Philips DP")
            or _startswith(s, n, b"ScanOutputManager") or _contains(s, n, b"Ventana")):
        info.software_flavour = 1

