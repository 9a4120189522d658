# cython: language_level=3
"""TIFF fast-path kernels: header + first-IFD parser and pixel post-processing.

Everything here works on raw bytes and runs without the GIL:

``parse_buffer``
    Parse the 8/16-byte header and the first IFD of a classic or BigTIFF file
    (either byte order) from a buffer that holds the first ``len(buf)`` bytes
    of a file of ``filesize`` bytes.  Only the tags the fast path needs are
    decoded; any other tag is reported (``unknown_tag``) so the caller can
    refuse the file.  The IFD chain is followed up to ``max_pages`` with loop
    detection.  Every read is bounds-checked: a value lying past
    ``filesize`` is a *corrupt* file, a value lying past ``len(buf)`` (but in
    the file) asks the caller for the whole file (``status == NEED_MORE``).
``plan_simple``
    The same parse, then the serving policy (``_decline``, the one place the
    fast path's rule is written), then the one-read plan of a plain file.
``byteswap``, ``untile``, ``plan_runs``
    In-place byte swapping, tile assembly and merging of strips into read
    runs.  Predictor decoding is imagecodecs' (``delta_decode``,
    ``floatpred_decode``).

Every Python-callable entry point checks its sizes in O(1) and raises
ValueError before its nogil core runs; the cores neither allocate Python
objects nor raise.  ``imgio.plugins.tiff.fastpath`` turns statuses into errors.  The
implementation follows the public TIFF 6.0 and BigTIFF specs.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free

cimport cython
import numpy as np

# -- statuses --------------------------------------------------------------------
cpdef enum Status:
    OK = 0
    NOT_TIFF = 1
    NEED_MORE = 2
    CORRUPT = 3

# corrupt codes (messages live in imgio.plugins.tiff.fastpath)
cpdef enum Corrupt:
    C_TRUNC_HEADER = 1      # file too short for its header
    C_BAD_BIGTIFF = 2       # BigTIFF header with bad offset size / reserved
    C_NO_IFD = 3            # first IFD offset is 0
    C_IFD_PAST_EOF = 4      # an IFD (or its entry table) lies past EOF
    C_ABSURD_ENTRIES = 5    # entry count cannot fit in the file
    C_VALUE_PAST_EOF = 6    # a needed tag value lies past EOF
    C_ABSURD_COUNT = 7      # a needed tag declares an impossible value count
    C_IFD_LOOP = 8          # IFD chain loops back
    C_NEXT_PAST_EOF = 9     # next-IFD offset points past EOF

cdef enum:
    MAXDIM = 32
    MAXPAGES_HARD = 4096

# description kinds
cdef enum:
    D_NONE = 0
    D_PLAIN = 1
    D_SHAPED = 2
    D_IMAGEJ = 3
    D_OME = 4
    D_OTHER = 5      # another flavour tifffile interprets (scn, svs, scanimage ...)
    D_BADSHAPE = 6   # looks shaped but the shape cannot be parsed


ctypedef struct Info:
    int status
    int code
    uint64_t detail
    uint64_t need            # NEED_MORE: bytes the parse needs
    int bigendian
    int bigtiff
    uint64_t ifd_offset
    uint64_t next_ifd
    uint64_t n_entries
    # tag values (has_* flags say whether present)
    uint64_t width, length, spp, bps, sampleformat, compression, photometric
    uint64_t planar, predictor, rowsperstrip, subfiletype, oldsubfiletype
    uint64_t tilewidth, tilelength, imagedepth, tiledepth, fillorder
    int has_width, has_length, has_spp, has_bps, has_sf, has_compression
    int has_photometric, has_planar, has_predictor, has_rps, has_subfiletype
    int has_oldsubfiletype, has_tilewidth, has_tilelength, has_fillorder
    int bps_mixed, sf_mixed, bad_type
    uint64_t bps_count, sf_count
    # segment arrays: position in file, count, TIFF type
    uint64_t off_pos, off_count, cnt_pos, cnt_count
    int off_type, cnt_type, off_tag, cnt_tag
    int n_offtags, n_cnttags
    int n_desc
    uint64_t desc_pos, desc_len, desc2_pos, desc2_len
    int desc_kind, desc2_kind, has_shaped
    int shaped_ndim
    int64_t shaped[MAXDIM]
    int64_t imagej_nd
    int has_software
    int software_flavour
    int n_subifds
    int has_colormap
    int extrasamples_count
    int unknown_tag
    int flavour_tag
    int64_t n_pages
    int pages_capped


cdef inline int _typesize(uint64_t t) noexcept nogil:
    if t == 1 or t == 2 or t == 6 or t == 7:
        return 1
    if t == 3 or t == 8:
        return 2
    if t == 4 or t == 9 or t == 11 or t == 13:
        return 4
    if t == 5 or t == 10 or t == 12 or t == 16 or t == 17 or t == 18:
        return 8
    return 0


cdef inline uint64_t _u16(const uint8_t* p, int be) noexcept nogil:
    if be:
        return (<uint64_t>p[0] << 8) | p[1]
    return (<uint64_t>p[1] << 8) | p[0]


cdef inline uint64_t _u32(const uint8_t* p, int be) noexcept nogil:
    if be:
        return ((<uint64_t>p[0] << 24) | (<uint64_t>p[1] << 16)
                | (<uint64_t>p[2] << 8) | p[3])
    return ((<uint64_t>p[3] << 24) | (<uint64_t>p[2] << 16)
            | (<uint64_t>p[1] << 8) | p[0])


cdef inline uint64_t _u64(const uint8_t* p, int be) noexcept nogil:
    if be:
        return (_u32(p, 1) << 32) | _u32(p + 4, 1)
    return (_u32(p + 4, 0) << 32) | _u32(p, 0)


cdef inline uint64_t _uint_of(const uint8_t* p, uint64_t t, int be) noexcept nogil:
    """Unsigned integer value of one item of TIFF type ``t`` (0 if not integer)."""
    if t == 1:
        return p[0]
    if t == 3:
        return _u16(p, be)
    if t == 4 or t == 13:
        return _u32(p, be)
    if t == 16 or t == 18:
        return _u64(p, be)
    return 0


cdef inline int _is_uint_type(uint64_t t) noexcept nogil:
    # SHORT, LONG, LONG8 only: tifffile gives BYTE values as bytes and IFD types
    # as offsets, which changes how it shapes the page (or makes it raise), so a
    # needed tag of another type declines the file (``bad_type``)
    return t == 3 or t == 4 or t == 16


cdef inline int _corrupt(Info* info, int code, uint64_t detail) noexcept nogil:
    info.status = CORRUPT
    info.code = code
    info.detail = detail
    return -1


cdef inline int _need(Info* info, uint64_t start, uint64_t length, uint64_t buflen,
                      uint64_t filesize, int code, uint64_t detail) noexcept nogil:
    """0 if [start, start + length) is in the buffer; -1 and a status otherwise."""
    cdef uint64_t end
    if start > filesize or length > filesize - start:
        return _corrupt(info, code, detail)
    end = start + length
    if end > buflen:
        info.status = NEED_MORE
        if end > info.need:
            info.need = end
        return -1
    return 0


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


cdef int _scalar(const uint8_t* b, uint64_t t, uint64_t cnt, uint64_t vpos,
                 int be, uint64_t* out, Info* info) noexcept nogil:
    """The value of a one-value integer tag stored at ``b + vpos``; -1 if odd.

    More than one value is odd too: tifffile then holds a tuple where it expects
    a number, and shapes the page differently or raises.
    """
    if not _is_uint_type(t) or cnt != 1:
        info.bad_type = 1
        return -1
    out[0] = _uint_of(b + vpos, t, be)
    return 0


cdef inline int _tag_bit(uint64_t tag) noexcept nogil:
    """A bit per one-value tag the parser reads (-1 for others): duplicates are odd."""
    if 254 <= tag <= 259:
        return <int>(tag - 254)
    if tag == 262: return 6
    if tag == 266: return 7
    if tag == 277: return 8
    if tag == 278: return 9
    if tag == 284: return 10
    if tag == 317: return 11
    if tag == 322: return 12
    if tag == 323: return 13
    if tag == 339: return 14
    if tag == 32997: return 15
    if tag == 32998: return 16
    return -1


cdef int _parse(const uint8_t* b, uint64_t buflen, uint64_t filesize,
                int64_t max_pages, Info* info) noexcept nogil:
    cdef int be, big
    cdef uint64_t magic, ifd, n, entsize, cntsize, offsize, inl, pos, i, j
    cdef uint64_t tag, t, cnt, size, vpos, v, first
    cdef uint64_t* visited
    cdef int64_t npages, k
    cdef int dup, bit
    cdef uint64_t seen = 0

    if buflen < 4:
        if filesize >= 4:
            info.status = NEED_MORE
            info.need = 16
            return -1
        if buflen >= 2 and (b[0] == 73 and b[1] == 73 or b[0] == 77 and b[1] == 77):
            return _corrupt(info, C_TRUNC_HEADER, filesize)
        info.status = NOT_TIFF
        return -1
    if b[0] == 73 and b[1] == 73:       # 'II'
        be = 0
    elif b[0] == 77 and b[1] == 77:     # 'MM'
        be = 1
    else:
        info.status = NOT_TIFF
        return -1
    magic = _u16(b + 2, be)
    if magic == 42:
        big = 0
        entsize = 12; cntsize = 2; offsize = 4; inl = 4
        if _need(info, 0, 8, buflen, filesize, C_TRUNC_HEADER, filesize):
            return -1
        ifd = _u32(b + 4, be)
    elif magic == 43:
        big = 1
        entsize = 20; cntsize = 8; offsize = 8; inl = 8
        if _need(info, 0, 16, buflen, filesize, C_TRUNC_HEADER, filesize):
            return -1
        if _u16(b + 4, be) != 8 or _u16(b + 6, be) != 0:
            return _corrupt(info, C_BAD_BIGTIFF, _u16(b + 4, be))
        ifd = _u64(b + 8, be)
    else:
        info.status = NOT_TIFF    # ORF, RW2, ... : not plain TIFF
        return -1
    info.bigendian = be
    info.bigtiff = big
    info.ifd_offset = ifd
    if ifd == 0:
        return _corrupt(info, C_NO_IFD, 0)
    if ifd > filesize or cntsize > filesize - ifd:
        return _corrupt(info, C_IFD_PAST_EOF, ifd)
    if _need(info, ifd, cntsize, buflen, filesize, C_IFD_PAST_EOF, ifd):
        return -1
    n = _u16(b + ifd, be) if not big else _u64(b + ifd, be)
    info.n_entries = n
    if n > (filesize - ifd - cntsize) / entsize:
        return _corrupt(info, C_ABSURD_ENTRIES, n)
    if _need(info, ifd, cntsize + n * entsize + offsize, buflen, filesize,
             C_IFD_PAST_EOF, ifd):
        return -1
    # defaults (TIFF 6.0)
    info.spp = 1
    info.bps = 1
    info.sampleformat = 1
    info.compression = 1
    info.planar = 1
    info.predictor = 1
    info.fillorder = 1
    info.imagedepth = 1
    info.tiledepth = 1

    pos = ifd + cntsize
    for i in range(n):
        tag = _u16(b + pos, be)
        t = _u16(b + pos + 2, be)
        if big:
            cnt = _u64(b + pos + 4, be)
        else:
            cnt = _u32(b + pos + 4, be)
        size = <uint64_t>_typesize(t)
        # value/offset field: after tag(2) type(2) count(4|8)
        vpos = pos + (12 if big else 8)
        pos += entsize
        bit = _tag_bit(tag)
        if bit >= 0:
            if seen & (<uint64_t>1 << bit):
                # tifffile keeps the first of duplicated tags, this parser the
                # last: rather than mimic it, a duplicate declines the file
                info.bad_type = 1
            seen |= <uint64_t>1 << bit
        if size == 0:
            # unknown type: tifffile skips such tags; we only care about ours
            if tag == 256 or tag == 257 or tag == 258 or tag == 259 or tag == 262 \
                    or tag == 273 or tag == 277 or tag == 278 or tag == 279 \
                    or tag == 284 or tag == 317 or tag == 322 or tag == 323 \
                    or tag == 324 or tag == 325 or tag == 339:
                info.bad_type = 1
            elif not _is_safe_tag(tag):
                if info.unknown_tag == 0:
                    info.unknown_tag = <int>tag
            continue
        if cnt > filesize / size + 1:
            # cannot possibly be stored in this file
            if tag in (256, 257, 258, 259, 262, 270, 273, 277, 278, 279, 284,
                       305, 317, 322, 323, 324, 325, 330, 339):
                return _corrupt(info, C_ABSURD_COUNT, tag)
            if info.unknown_tag == 0 and not _is_safe_tag(tag):
                info.unknown_tag = <int>tag
            continue
        if cnt * size > inl:
            first = _u64(b + vpos, be) if big else _u32(b + vpos, be)
            dup = 1   # value stored out of line at ``first``
        else:
            first = vpos
            dup = 0
        # ---- tags we need
        if tag == 256:
            if dup and _need(info, first, size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                return -1
            if _scalar(b, t, cnt, first, be, &info.width, info) == 0:
                info.has_width = 1
        elif tag == 257:
            if dup and _need(info, first, size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                return -1
            if _scalar(b, t, cnt, first, be, &info.length, info) == 0:
                info.has_length = 1
        elif tag == 258 or tag == 339:
            if cnt == 0 or not _is_uint_type(t):
                info.bad_type = 1
                continue
            if _need(info, first, cnt * size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                return -1
            v = _uint_of(b + first, t, be)
            for j in range(1, cnt):
                if _uint_of(b + first + j * size, t, be) != v:
                    if tag == 258:
                        info.bps_mixed = 1
                    else:
                        info.sf_mixed = 1
                    break
            if tag == 258:
                info.bps = v; info.has_bps = 1; info.bps_count = cnt
            else:
                info.sampleformat = v; info.has_sf = 1; info.sf_count = cnt
        elif tag == 259 or tag == 262 or tag == 277 or tag == 278 or tag == 284 \
                or tag == 317 or tag == 254 or tag == 255 or tag == 322 or tag == 323 \
                or tag == 266 or tag == 32997 or tag == 32998:
            if dup and _need(info, first, size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                return -1
            if _scalar(b, t, cnt, first, be, &v, info) != 0:
                continue
            if tag == 259:
                info.compression = v; info.has_compression = 1
            elif tag == 262:
                info.photometric = v; info.has_photometric = 1
            elif tag == 277:
                info.spp = v; info.has_spp = 1
            elif tag == 278:
                info.rowsperstrip = v; info.has_rps = 1
            elif tag == 284:
                info.planar = v; info.has_planar = 1
            elif tag == 317:
                info.predictor = v; info.has_predictor = 1
            elif tag == 254:
                info.subfiletype = v; info.has_subfiletype = 1
            elif tag == 255:
                info.oldsubfiletype = v; info.has_oldsubfiletype = 1
            elif tag == 322:
                info.tilewidth = v; info.has_tilewidth = 1
            elif tag == 323:
                info.tilelength = v; info.has_tilelength = 1
            elif tag == 266:
                info.fillorder = v; info.has_fillorder = 1
            elif tag == 32997:
                info.imagedepth = v
            else:
                info.tiledepth = v
        elif tag == 273 or tag == 324:
            if not _is_uint_type(t):
                info.bad_type = 1
                continue
            if _need(info, first, cnt * size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                return -1
            info.off_pos = first; info.off_count = cnt; info.off_type = <int>t
            info.off_tag = <int>tag; info.n_offtags += 1
        elif tag == 279 or tag == 325:
            if not _is_uint_type(t):
                info.bad_type = 1
                continue
            if _need(info, first, cnt * size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                return -1
            info.cnt_pos = first; info.cnt_count = cnt; info.cnt_type = <int>t
            info.cnt_tag = <int>tag; info.n_cnttags += 1
        elif tag == 270:
            info.n_desc += 1
            if info.n_desc <= 2:
                if _need(info, first, cnt * size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                    return -1
                if info.n_desc == 1:
                    info.desc_pos = first
                    info.desc_len = cnt * size
                else:
                    info.desc2_pos = first
                    info.desc2_len = cnt * size
        elif tag == 305:
            if _need(info, first, cnt * size, buflen, filesize, C_VALUE_PAST_EOF, tag):
                return -1
            info.has_software = 1
            _analyse_software(b + first, cnt * size, info)
        elif tag == 330:
            info.n_subifds += 1
        elif tag == 320:
            info.has_colormap = 1
        elif tag == 338:
            info.extrasamples_count = <int>cnt
        elif _is_flavour_tag(tag):
            if info.flavour_tag == 0:
                info.flavour_tag = <int>tag
        elif not _is_safe_tag(tag):
            if info.unknown_tag == 0:
                info.unknown_tag = <int>tag

    info.next_ifd = _u64(b + pos, be) if big else _u32(b + pos, be)
    if info.n_desc >= 1:
        # tifffile looks for shaped / ImageJ metadata in the first two descriptions
        _analyse_description(b + info.desc_pos, info.desc_len, info)
        info.has_shaped = info.desc_kind == D_SHAPED
    if info.n_desc >= 2:
        _analyse_second(b + info.desc2_pos, info.desc2_len, info)

    # ---- follow the IFD chain: count pages up to max_pages, detect loops
    if max_pages < 1:
        max_pages = 1
    if max_pages > MAXPAGES_HARD:
        max_pages = MAXPAGES_HARD
    visited = <uint64_t*>malloc(<size_t>(max_pages + 1) * sizeof(uint64_t))
    if visited == NULL:
        info.n_pages = 1
        info.pages_capped = 1
        return 0
    visited[0] = ifd
    npages = 1
    v = info.next_ifd
    while v != 0:
        for k in range(npages):
            if visited[k] == v:
                free(visited)
                return _corrupt(info, C_IFD_LOOP, v)
        if v > filesize or cntsize > filesize - v:
            free(visited)
            return _corrupt(info, C_NEXT_PAST_EOF, v)
        visited[npages] = v
        npages += 1
        if npages >= max_pages:
            info.pages_capped = 1
            break
        if _need(info, v, cntsize, buflen, filesize, C_NEXT_PAST_EOF, v):
            free(visited)
            return -1
        n = _u16(b + v, be) if not big else _u64(b + v, be)
        if n > (filesize - v - cntsize) / entsize:
            free(visited)
            return _corrupt(info, C_ABSURD_ENTRIES, n)
        pos = v + cntsize + n * entsize
        if _need(info, pos, offsize, buflen, filesize, C_IFD_PAST_EOF, v):
            free(visited)
            return -1
        v = _u64(b + pos, be) if big else _u32(b + pos, be)
    free(visited)
    info.n_pages = npages
    return 0


cdef void _read_uints(const uint8_t* b, uint64_t pos, uint64_t t, uint64_t count,
                      int be, uint64_t* out) noexcept nogil:
    cdef uint64_t i
    cdef int size = _typesize(t)
    for i in range(count):
        out[i] = _uint_of(b + pos + i * size, t, be)


_KIND_NAMES = {D_NONE: None, D_PLAIN: "plain", D_SHAPED: "shaped", D_IMAGEJ: "imagej",
               D_OME: "ome", D_OTHER: "other", D_BADSHAPE: "badshape"}


def parse_buffer(const unsigned char[::1] buf, uint64_t filesize, int64_t max_pages=2):
    """Parse the header and first IFD.

    ``buf`` holds the first ``len(buf)`` bytes of a file of ``filesize`` bytes.
    Returns a dict; ``status`` is ``OK``, ``NOT_TIFF``, ``NEED_MORE`` (``need``:
    bytes to provide) or ``CORRUPT`` (``code`` and ``detail``).
    """
    cdef Info info
    cdef uint64_t buflen = buf.shape[0]
    cdef const uint8_t* p = NULL
    cdef uint64_t[::1] offs, cnts
    cdef uint8_t dummy = 0
    cdef uint64_t detail = 0
    cdef int code
    memset_info(&info)
    if buflen > filesize:
        buflen = filesize
    p = &buf[0] if buf.shape[0] > 0 else &dummy
    with nogil:
        _parse(p, buflen, filesize, max_pages, &info)
    if info.status != OK:
        return {"status": info.status, "code": info.code, "detail": info.detail,
                "need": info.need}
    offsets = np.empty(info.off_count, dtype=np.uint64)
    counts = np.empty(info.cnt_count, dtype=np.uint64)
    offs = offsets
    cnts = counts
    if info.off_count:
        with nogil:
            _read_uints(p, info.off_pos, info.off_type, info.off_count, info.bigendian,
                        &offs[0])
    if info.cnt_count:
        with nogil:
            _read_uints(p, info.cnt_pos, info.cnt_type, info.cnt_count, info.bigendian,
                        &cnts[0])
    code = _decline(&info, &detail)
    return {
        "status": 0,
        "decline": code,
        "reason": _reason(code, detail, info.sampleformat),
        "header_size": _header_size(&info),
        "byteorder": ">" if info.bigendian else "<",
        "bigtiff": bool(info.bigtiff),
        "ifd_offset": info.ifd_offset,
        "next_ifd": info.next_ifd,
        "n_entries": info.n_entries,
        "n_pages": info.n_pages,
        "pages_capped": bool(info.pages_capped),
        "width": info.width if info.has_width else None,
        "length": info.length if info.has_length else None,
        "samplesperpixel": info.spp,
        "bitspersample": info.bps,
        "bitspersample_count": info.bps_count,
        "bitspersample_mixed": bool(info.bps_mixed),
        "sampleformat": info.sampleformat,
        "sampleformat_count": info.sf_count,
        "sampleformat_mixed": bool(info.sf_mixed),
        "compression": info.compression,
        "photometric": info.photometric if info.has_photometric else None,
        "planarconfig": info.planar,
        "predictor": info.predictor,
        "rowsperstrip": info.rowsperstrip if info.has_rps else None,
        "newsubfiletype": info.subfiletype,
        "subfiletype": info.oldsubfiletype if info.has_oldsubfiletype else None,
        "tilewidth": info.tilewidth if info.has_tilewidth else None,
        "tilelength": info.tilelength if info.has_tilelength else None,
        "imagedepth": info.imagedepth,
        "tiledepth": info.tiledepth,
        "fillorder": info.fillorder,
        "bad_type": bool(info.bad_type),
        "offsets_tag": info.off_tag,
        "bytecounts_tag": info.cnt_tag,
        "n_offsets_tags": info.n_offtags,
        "n_bytecounts_tags": info.n_cnttags,
        "offsets": offsets,
        "bytecounts": counts,
        "n_descriptions": info.n_desc,
        "description_kind": _KIND_NAMES.get(info.desc_kind),
        "description2_kind": _KIND_NAMES.get(info.desc2_kind) if info.n_desc > 1 else None,
        "description_offset": info.desc_pos,
        "description_length": info.desc_len,
        "shaped_shape": (tuple(info.shaped[i] for i in range(info.shaped_ndim))
                         if info.has_shaped else None),
        "imagej_nd": info.imagej_nd,
        "software_flavour": bool(info.software_flavour),
        "n_subifds": info.n_subifds,
        "colormap": bool(info.has_colormap),
        "extrasamples": info.extrasamples_count,
        "unknown_tag": info.unknown_tag,
        "flavour_tag": info.flavour_tag,
    }


# -- the serving policy (the only copy: imgio.plugins.tiff.fastpath reads its verdict) ----------
# Each rule says why the fast path does not serve a file; 0 means it does.  The
# messages are formatted with the rule's detail value by ``decline_reason``.
cdef enum Decline:
    R_SERVED = 0
    R_PAGES, R_UNKNOWN_TAG, R_FLAVOUR_TAG, R_SOFTWARE, R_BAD_TYPE, R_SUBIFDS
    R_SUBFILE, R_PALETTE, R_NO_SIZE, R_EMPTY, R_DESCS, R_DESC_KIND, R_DESC2_KIND
    R_HYPERSTACK, R_COMPRESSION, R_FILLORDER, R_VOLUMETRIC, R_GRAY_EXTRA
    R_RGB_SAMPLES, R_PLANAR_RGB, R_PHOTOMETRIC, R_PLANAR, R_MIXED, R_BPS_COUNT
    R_SF_COUNT, R_DTYPE, R_PRED_UNCOMPRESSED, R_PRED_HFLOAT, R_PRED_FINT
    R_PREDICTOR, R_TILE_SIZE, R_TILE_TAGS, R_STRIP_TAGS, R_BOTH, R_RPS0, R_SHAPED

_DECLINE_MESSAGES = {
    R_PAGES: "more than one page",
    R_UNKNOWN_TAG: "tag {d} is not known to be harmless",
    R_FLAVOUR_TAG: "tag {d} marks a special TIFF flavour",
    R_SOFTWARE: "the Software tag marks a special TIFF flavour",
    R_BAD_TYPE: "a needed tag is duplicated, has an unexpected type or no value",
    R_SUBIFDS: "SubIFDs",
    R_SUBFILE: "reduced-resolution or mask subfile type",
    R_PALETTE: "palette",
    R_NO_SIZE: "no ImageWidth / ImageLength",
    R_EMPTY: "empty image",
    R_DESCS: "more than two ImageDescription tags",
    R_DESC_KIND: "{k} description",
    R_DESC2_KIND: "second ImageDescription is {k}",
    R_HYPERSTACK: "ImageJ hyperstack",
    R_COMPRESSION: "compression {d}",
    R_FILLORDER: "FillOrder 2",
    R_VOLUMETRIC: "volumetric (SGI ImageDepth)",
    R_GRAY_EXTRA: "gray with extra samples",
    R_RGB_SAMPLES: "RGB with {d} samples",
    R_PLANAR_RGB: "planar separate RGB",
    R_PHOTOMETRIC: "photometric {d}",
    R_PLANAR: "planar configuration {d}",
    R_MIXED: "samples of different types",
    R_BPS_COUNT: "bitspersample_count does not match SamplesPerPixel",
    R_SF_COUNT: "sampleformat_count does not match SamplesPerPixel",
    R_DTYPE: "{d}-bit samples of format {e}",
    R_PRED_UNCOMPRESSED: "predictor on uncompressed data",
    R_PRED_HFLOAT: "horizontal predictor on float samples",
    R_PRED_FINT: "floating-point predictor on integer samples",
    R_PREDICTOR: "predictor {d}",
    R_TILE_SIZE: "incomplete tile size",
    R_TILE_TAGS: "tiled without TileOffsets / TileByteCounts",
    R_STRIP_TAGS: "no StripOffsets / StripByteCounts",
    R_BOTH: "both strips and tiles",
    R_RPS0: "RowsPerStrip 0",
    R_SHAPED: "shaped description differs from the image's shape",
}


cdef inline int _known_dtype(uint64_t sf, uint64_t bps) noexcept nogil:
    if sf == 1 or sf == 2:
        return bps == 8 or bps == 16 or bps == 32 or bps == 64
    if sf == 3:
        return bps == 16 or bps == 32 or bps == 64
    return 0


cdef int _decline(const Info* info, uint64_t* detail) noexcept nogil:
    """The rule by which the fast path declines the parsed file, or R_SERVED.

    Never "damaged": damage is the parser's status and ``_fasttiff._geometry``'s.
    ``detail`` receives the value a message names (a tag, a compression, ...).
    """
    cdef int tiled
    detail[0] = 0
    if info.n_pages != 1:
        return R_PAGES
    if info.unknown_tag:
        detail[0] = <uint64_t>info.unknown_tag
        return R_UNKNOWN_TAG
    if info.flavour_tag:
        detail[0] = <uint64_t>info.flavour_tag
        return R_FLAVOUR_TAG
    if info.software_flavour:
        return R_SOFTWARE
    if info.bad_type:
        return R_BAD_TYPE
    if info.n_subifds:
        return R_SUBIFDS
    if not (info.subfiletype == 0 or info.subfiletype == 2) or (
            info.has_oldsubfiletype and info.oldsubfiletype != 1):
        return R_SUBFILE
    if info.has_colormap:
        return R_PALETTE
    if not info.has_width or not info.has_length:
        return R_NO_SIZE
    if info.width == 0 or info.length == 0:
        return R_EMPTY
    if info.n_desc > 2:
        return R_DESCS
    if info.desc_kind == D_OME or info.desc_kind == D_OTHER or info.desc_kind == D_BADSHAPE:
        detail[0] = <uint64_t>info.desc_kind
        return R_DESC_KIND
    if info.n_desc > 1 and (info.desc2_kind == D_BADSHAPE or info.desc2_kind == D_IMAGEJ):
        detail[0] = <uint64_t>info.desc2_kind
        return R_DESC2_KIND
    if info.desc_kind == D_IMAGEJ and info.imagej_nd > 1:
        return R_HYPERSTACK
    if not (info.compression == 1 or info.compression == 8 or info.compression == 32946):
        detail[0] = info.compression
        return R_COMPRESSION
    if info.fillorder != 1:
        return R_FILLORDER
    if info.imagedepth != 1 or info.tiledepth != 1:
        return R_VOLUMETRIC
    if not info.has_photometric:
        detail[0] = <uint64_t>-1
        return R_PHOTOMETRIC
    if info.photometric == 1:
        if info.spp != 1:
            return R_GRAY_EXTRA
    elif info.photometric == 2:
        if not (info.spp == 3 or info.spp == 4):
            detail[0] = info.spp
            return R_RGB_SAMPLES
        if info.planar != 1:
            return R_PLANAR_RGB
    else:
        detail[0] = info.photometric
        return R_PHOTOMETRIC
    if not (info.planar == 1 or info.planar == 2):
        detail[0] = info.planar
        return R_PLANAR
    if info.bps_mixed or info.sf_mixed:
        return R_MIXED
    if not (info.bps_count == 0 or info.bps_count == 1 or info.bps_count == info.spp):
        return R_BPS_COUNT
    if not (info.sf_count == 0 or info.sf_count == 1 or info.sf_count == info.spp):
        return R_SF_COUNT
    if not _known_dtype(info.sampleformat, info.bps):
        detail[0] = info.bps
        return R_DTYPE
    if info.predictor != 1:
        if info.compression == 1:
            return R_PRED_UNCOMPRESSED
        if info.predictor == 2 and info.sampleformat == 3:
            return R_PRED_HFLOAT
        if info.predictor == 3 and info.sampleformat != 3:
            return R_PRED_FINT
        if not (info.predictor == 2 or info.predictor == 3):
            detail[0] = info.predictor
            return R_PREDICTOR
    tiled = info.has_tilewidth or info.has_tilelength
    if tiled:
        if not info.has_tilewidth or not info.has_tilelength or info.tilewidth == 0 \
                or info.tilelength == 0:
            return R_TILE_SIZE
        if info.off_tag != 324 or info.cnt_tag != 325:
            return R_TILE_TAGS
    elif info.off_tag != 273 or info.cnt_tag != 279:
        return R_STRIP_TAGS
    if info.n_offtags != 1 or info.n_cnttags != 1:
        return R_BOTH
    if not tiled and info.has_rps and info.rowsperstrip == 0:
        return R_RPS0
    if info.has_shaped:
        if info.spp == 1:
            if info.shaped_ndim != 2:
                return R_SHAPED
        elif info.shaped_ndim != 3 or <uint64_t>info.shaped[2] != info.spp:
            return R_SHAPED
        if <uint64_t>info.shaped[0] != info.length or <uint64_t>info.shaped[1] != info.width:
            return R_SHAPED
    return R_SERVED


def _reason(int code, uint64_t detail, uint64_t sampleformat):
    if code == R_SERVED:
        return None
    msg = _DECLINE_MESSAGES[code]
    return msg.format(d=detail, e=sampleformat, k=_KIND_NAMES.get(<int>detail))


cdef inline uint64_t _header_size(const Info* info) noexcept nogil:
    return 16 if info.bigtiff else 8


def plan_simple(const unsigned char[::1] buf, uint64_t filesize):
    """The read of a plain file as one contiguous run, or ``None``.

    ``buf`` holds the file's first bytes.  For a file the serving policy
    (``_decline``) accepts that is uncompressed and striped, with its strips
    stored back to back (what ``tifffile.imwrite`` and most acquisition
    software write) and every strip inside the file past the header:
    ``(length, width, samplesperpixel, sampleformat, bitspersample, bigendian,
    offset)``, the pixels being the ``length * width * spp * bps / 8`` bytes at
    ``offset``.  ``None`` for everything else, including damaged files: the
    full parse then decides (and names the damage).
    """
    cdef Info info
    cdef uint64_t buflen = buf.shape[0]
    cdef const uint8_t* p = NULL
    cdef uint64_t rps, nseg, segbytes, total, i, o, c, first = 0, need, detail
    cdef int osize, csize
    if buflen == 0:
        return None
    if buflen > filesize:
        buflen = filesize
    p = &buf[0]
    memset_info(&info)
    with nogil:
        _parse(p, buflen, filesize, 2, &info)
    if info.status != OK or _decline(&info, &detail) != R_SERVED:
        return None
    if info.compression != 1 or info.has_tilewidth or info.has_tilelength \
            or info.planar != 1:
        return None
    segbytes = info.width * info.spp * (info.bps // 8)  # one row
    if segbytes // info.width != info.spp * (info.bps // 8):
        return None  # overflow: let the full path name it
    if info.length > (<uint64_t>-1) // segbytes:
        return None
    total = info.length * segbytes
    rps = info.rowsperstrip if info.has_rps and info.rowsperstrip < info.length else info.length
    segbytes = rps * segbytes
    nseg = (info.length + rps - 1) // rps
    if info.off_count != nseg or info.cnt_count != nseg:
        return None
    osize = _typesize(info.off_type)
    csize = _typesize(info.cnt_type)
    for i in range(nseg):
        o = _uint_of(p + info.off_pos + i * osize, info.off_type, info.bigendian)
        c = _uint_of(p + info.cnt_pos + i * csize, info.cnt_type, info.bigendian)
        if i == 0:
            first = o
        elif o != first + i * segbytes:
            return None  # not back to back: the full path plans the runs
        need = segbytes if segbytes < total - i * segbytes else total - i * segbytes
        if c < need or o > filesize or c > filesize - o:
            return None
    if first < _header_size(&info) or first > filesize or total > filesize - first:
        return None  # an offset inside the header is damage: the full path names it
    return (info.length, info.width, info.spp, info.sampleformat, info.bps,
            bool(info.bigendian), first)


cdef void memset_info(Info* info) noexcept nogil:
    cdef size_t i
    cdef char* p = <char*>info
    for i in range(sizeof(Info)):
        p[i] = 0


# -- pixel kernels -----------------------------------------------------------------
# Python-callable entry points check every size in O(1) and raise ValueError
# before the nogil core runs: no argument values make them touch memory
# outside the buffers they were given.

cdef void _byteswap(uint8_t* buf, Py_ssize_t n, int itemsize) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint16_t a
    cdef uint32_t c
    cdef uint64_t d
    if itemsize == 2:
        for i in range(n):
            memcpy(&a, buf + 2 * i, 2)
            a = <uint16_t>((a >> 8) | (a << 8))
            memcpy(buf + 2 * i, &a, 2)
    elif itemsize == 4:
        for i in range(n):
            memcpy(&c, buf + 4 * i, 4)
            c = ((c >> 24) | ((c >> 8) & 0xFF00u) | ((c << 8) & 0xFF0000u) | (c << 24))
            memcpy(buf + 4 * i, &c, 4)
    elif itemsize == 8:
        for i in range(n):
            memcpy(&d, buf + 8 * i, 8)
            d = ((d & 0x00000000FFFFFFFFull) << 32) | ((d & 0xFFFFFFFF00000000ull) >> 32)
            d = ((d & 0x0000FFFF0000FFFFull) << 16) | ((d & 0xFFFF0000FFFF0000ull) >> 16)
            d = ((d & 0x00FF00FF00FF00FFull) << 8) | ((d & 0xFF00FF00FF00FF00ull) >> 8)
            memcpy(buf + 8 * i, &d, 8)


def byteswap(unsigned char[::1] buf, int itemsize):
    """Reverse the bytes of every ``itemsize``-byte item of ``buf`` in place.

    Releases the GIL.  ``itemsize`` is 1, 2, 4 or 8 and must divide
    ``len(buf)`` (ValueError otherwise).
    """
    cdef Py_ssize_t n = buf.shape[0]
    if itemsize not in (1, 2, 4, 8):
        raise ValueError(f"itemsize must be 1, 2, 4 or 8, not {itemsize}")
    if n % itemsize:
        raise ValueError(f"a buffer of {n} bytes does not hold whole {itemsize}-byte items")
    if n == 0 or itemsize == 1:
        return
    with nogil:
        _byteswap(&buf[0], n // itemsize, itemsize)


cdef void _untile(const uint8_t* tiles, uint8_t* out, Py_ssize_t height, Py_ssize_t width,
                  Py_ssize_t tilelength, Py_ssize_t tilewidth,
                  Py_ssize_t pixelbytes) noexcept nogil:
    cdef Py_ssize_t across = (width + tilewidth - 1) // tilewidth
    cdef Py_ssize_t down = (height + tilelength - 1) // tilelength
    cdef Py_ssize_t tilebytes = tilelength * tilewidth * pixelbytes
    cdef Py_ssize_t trow = tilewidth * pixelbytes
    cdef Py_ssize_t orow = width * pixelbytes
    cdef Py_ssize_t ty, tx, y, y0, x0, ny, nx
    cdef const uint8_t* src
    for ty in range(down):
        y0 = ty * tilelength
        ny = tilelength if y0 + tilelength <= height else height - y0
        for tx in range(across):
            x0 = tx * tilewidth
            nx = tilewidth if x0 + tilewidth <= width else width - x0
            src = tiles + (ty * across + tx) * tilebytes
            for y in range(ny):
                memcpy(out + (y0 + y) * orow + x0 * pixelbytes, src + y * trow,
                       <size_t>(nx * pixelbytes))


_SSIZE_MAX = (1 << 63) - 1


def untile(const unsigned char[::1] tiles, unsigned char[::1] out,
           Py_ssize_t height, Py_ssize_t width, Py_ssize_t tilelength,
           Py_ssize_t tilewidth, Py_ssize_t pixelbytes):
    """Copy full tiles (row-major tile order) into a ``height x width`` image.

    Edge tiles are cropped.  Releases the GIL.  Raises ValueError unless every
    size is positive, ``len(tiles) >= ntiles * tilelength * tilewidth *
    pixelbytes`` and ``len(out) >= height * width * pixelbytes``.
    """
    if height <= 0 or width <= 0 or tilelength <= 0 or tilewidth <= 0 or pixelbytes <= 0:
        raise ValueError(f"untile needs positive sizes, got image {height}x{width}, "
                         f"tiles {tilelength}x{tilewidth}, {pixelbytes} bytes per pixel")
    # Python integers (``object``): no overflow in the checks
    cdef object H = height, W = width, TL = tilelength, TW = tilewidth, PX = pixelbytes
    cdef object across = -(-W // TW)
    cdef object down = -(-H // TL)
    cdef object need_tiles = across * down * TL * TW * PX
    cdef object need_out = H * W * PX
    if need_tiles > _SSIZE_MAX or need_out > _SSIZE_MAX:
        raise ValueError("untile: the sizes overflow")
    if tiles.shape[0] < need_tiles:
        raise ValueError(f"untile: {down * across} tiles need {need_tiles} bytes, "
                         f"got {tiles.shape[0]}")
    if out.shape[0] < need_out:
        raise ValueError(f"untile: a {height}x{width} image needs {need_out} bytes, "
                         f"got {out.shape[0]}")
    with nogil:
        _untile(&tiles[0], &out[0], height, width, tilelength, tilewidth, pixelbytes)


cdef Py_ssize_t _plan_runs(const uint64_t* offsets, Py_ssize_t n, Py_ssize_t stride,
                           Py_ssize_t total, int64_t* runs) noexcept nogil:
    cdef Py_ssize_t i, nr = 0
    cdef int64_t need
    for i in range(n):
        need = stride if (i + 1) * stride <= total else total - i * stride
        if need <= 0:
            break
        if (nr > 0 and <uint64_t>(runs[3 * nr - 3] + runs[3 * nr - 1]) == offsets[i]
                and runs[3 * nr - 2] + runs[3 * nr - 1] == i * stride):
            runs[3 * nr - 1] += need
        else:
            runs[3 * nr] = <int64_t>offsets[i]
            runs[3 * nr + 1] = i * stride
            runs[3 * nr + 2] = need
            nr += 1
    return nr


def plan_runs(const uint64_t[::1] offsets, Py_ssize_t stride, Py_ssize_t total,
              int64_t[:, ::1] runs):
    """Merge uncompressed strips into contiguous read runs; the number of runs.

    Strip ``i`` supplies ``min(stride, total - i*stride)`` bytes at
    ``offsets[i]`` to output byte ``i*stride``.  Consecutive strips that sit
    back to back in the file become one run ``(file_offset, out_offset,
    length)`` in ``runs``.  Releases the GIL.  Raises ValueError unless
    ``stride > 0``, ``0 <= total <= len(offsets) * stride`` and ``runs`` has
    shape ``(>= len(offsets), 3)``.
    """
    cdef Py_ssize_t n = offsets.shape[0]
    cdef Py_ssize_t i
    if stride <= 0 or total < 0:
        raise ValueError(f"plan_runs needs stride > 0 and total >= 0, got {stride}, {total}")
    if total > <object>n * <object>stride:   # Python integers: no overflow
        raise ValueError(f"plan_runs: {n} strips of {stride} bytes cannot supply {total}")
    if runs.shape[1] != 3 or runs.shape[0] < n:
        raise ValueError(f"plan_runs: runs must have shape ({n}, 3), not "
                         f"({runs.shape[0]}, {runs.shape[1]})")
    if n == 0:
        return 0
    with nogil:
        i = _plan_runs(&offsets[0], n, stride, total, &runs[0, 0])
    return i
