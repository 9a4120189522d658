# cython: language_level=3
"""Declarations shared by the sources of ``imgio._ext.tiffparse`` (cimported; no module).

The parse state (``Info``), the status / corrupt-code / description-kind enums
and the inline byte readers.  The module is split over ``tiffparse.pyx`` (the
IFD parser and the Python entry points), ``tiffdesc.pxi`` (tag tables and the
description analysis), ``tiffpolicy.pxi`` (the serving policy) and
``tiffpixels.pxi`` (the pixel kernels).
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

# -- statuses --------------------------------------------------------------------
cdef enum Status:
    OK = 0
    NOT_TIFF = 1
    NEED_MORE = 2
    CORRUPT = 3

# corrupt codes (messages live in imgio.plugins.tiff.fastpath)
cdef enum Corrupt:
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
    int64_t page_differs     # a volume's first page (> 0) unlike page 0, or 0


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

