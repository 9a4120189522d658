# cython: language_level=3
"""TIFF fast-path kernels: header + IFD parser, serving policy, pixel post-processing.

Everything here works on raw bytes and runs without the GIL:

``parse_buffer``
    Parse the 8/16-byte header and the first IFD of a classic or BigTIFF file
    (either byte order) from a buffer that holds the first ``len(buf)`` bytes
    of a file of ``filesize`` bytes.  Only the tags the fast path needs are
    decoded; any other tag is reported (``unknown_tag``) so the caller can
    refuse the file.  The IFD chain is followed up to ``max_pages`` with loop
    detection; a volume candidate (a shaped description declaring N
    compressed pages) has its N pages parsed in full and compared with the
    first, and ``offsets`` / ``bytecounts`` then hold every page's segments.
    Every read is bounds-checked: a value lying past ``filesize`` is a
    *corrupt* file, a value lying past ``len(buf)`` (but in
    the file) asks the caller for the whole file (``status == NEED_MORE``).
``plan_simple``
    The same parse, then the serving policy (``_decline``, the one place the
    fast path's rule is written), then the one-read plan of a plain file.
``byteswap``, ``untile``, ``plan_runs``
    In-place byte swapping, tile assembly and merging of strips into read
    runs.  Predictor decoding is imagecodecs' (``delta_decode``,
    ``floatpred_decode``).

Sources: this file (the IFD parser and the Python entry points),
``tiffinfo.pxd`` (the parse state, enums and inline byte readers, cimported),
``tiffdesc.pxi`` (tag tables, description analysis), ``tiffpolicy.pxi`` (the
serving policy) and ``tiffpixels.pxi`` (the pixel kernels), included here:
one extension module, ``imgio._ext.tiffparse``.

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

from tiffinfo cimport *

include "tiffdesc.pxi"
include "tiffpolicy.pxi"
include "tiffpixels.pxi"


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


cdef int _parse_ifd(const uint8_t* b, uint64_t buflen, uint64_t filesize, uint64_t ifd,
                    Info* info) noexcept nogil:
    """Parse the IFD at ``ifd`` into ``info`` (whose ``bigendian``/``bigtiff`` are set)."""
    cdef int be = info.bigendian, big = info.bigtiff
    cdef uint64_t entsize = 20 if big else 12, cntsize = 8 if big else 2
    cdef uint64_t offsize = 8 if big else 4, inl = 8 if big else 4
    cdef uint64_t n, pos, i, j, tag, t, cnt, size, vpos, v, first
    cdef int dup, bit
    cdef uint64_t seen = 0
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

    return 0


cdef int _parse(const uint8_t* b, uint64_t buflen, uint64_t filesize,
                int64_t max_pages, Info* info) noexcept nogil:
    """Header, first IFD and the IFD chain (pages counted up to ``max_pages``).

    A volume candidate (``_volume_pages``: a shaped description declaring N
    compressed pages) has its first N pages parsed in full and compared with
    page 0 (``info.page_differs``), and the chain followed to N + 1 pages.
    """
    cdef int be, big
    cdef uint64_t magic, ifd, n, entsize, cntsize, offsize, pos, v
    cdef uint64_t* visited
    cdef int64_t npages, k, volume
    cdef Info page

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
        entsize = 12; cntsize = 2; offsize = 4
        if _need(info, 0, 8, buflen, filesize, C_TRUNC_HEADER, filesize):
            return -1
        ifd = _u32(b + 4, be)
    elif magic == 43:
        big = 1
        entsize = 20; cntsize = 8; offsize = 8
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
    if _parse_ifd(b, buflen, filesize, ifd, info):
        return -1
    # ---- follow the IFD chain: count pages up to max_pages, detect loops
    volume = _volume_pages(info)
    if volume and max_pages < volume + 1:
        max_pages = volume + 1     # one more: a page past the volume declines it
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
        if npages <= volume:
            # a page of the volume: parsed in full, compared with page 0
            memset_info(&page)
            page.bigendian = be
            page.bigtiff = big
            if _parse_ifd(b, buflen, filesize, v, &page):
                free(visited)
                info.status = page.status
                info.code = page.code
                info.detail = page.detail
                if page.need > info.need:
                    info.need = page.need
                return -1
            if info.page_differs == 0 and not _same_page(info, &page):
                info.page_differs = npages - 1
            v = page.next_ifd
            continue
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


cdef void _volume_segments(const uint8_t* b, uint64_t buflen, uint64_t filesize,
                           const Info* info, uint64_t* offs, uint64_t* cnts) noexcept nogil:
    """The segment offsets and byte counts of a served volume's pages, page by page.

    Only after ``_parse`` accepted the volume: every page parses and holds
    ``off_count`` (= ``cnt_count``) segments, so this walk cannot fail.
    """
    cdef Info page
    cdef uint64_t v = info.ifd_offset
    cdef int64_t k
    cdef uint64_t nseg = info.off_count
    for k in range(info.n_pages):
        memset_info(&page)
        page.bigendian = info.bigendian
        page.bigtiff = info.bigtiff
        _parse_ifd(b, buflen, filesize, v, &page)
        _read_uints(b, page.off_pos, page.off_type, nseg, page.bigendian, offs + k * nseg)
        _read_uints(b, page.cnt_pos, page.cnt_type, nseg, page.bigendian, cnts + k * nseg)
        v = page.next_ifd


def parse_buffer(const unsigned char[::1] buf, uint64_t filesize, int64_t max_pages=2):
    """Parse the header and first IFD.

    For a served volume (a shaped description declaring N compressed pages,
    every page stored like the first) ``n_pages`` is N and ``offsets`` /
    ``bytecounts`` hold the segments of all N pages, page after page.
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
    cdef int64_t npages
    memset_info(&info)
    if buflen > filesize:
        buflen = filesize
    p = &buf[0] if buf.shape[0] > 0 else &dummy
    with nogil:
        _parse(p, buflen, filesize, max_pages, &info)
    if info.status != OK:
        return {"status": info.status, "code": info.code, "detail": info.detail,
                "need": info.need}
    code = _decline(&info, &detail)
    # a served volume: the segments of every page, page after page
    npages = info.n_pages if code == R_SERVED else 1
    offsets = np.empty(npages * info.off_count, dtype=np.uint64)
    counts = np.empty(npages * info.cnt_count, dtype=np.uint64)
    offs = offsets
    cnts = counts
    if npages > 1:
        with nogil:
            _volume_segments(p, buflen, filesize, &info, &offs[0], &cnts[0])
    else:
        if info.off_count:
            with nogil:
                _read_uints(p, info.off_pos, info.off_type, info.off_count, info.bigendian,
                            &offs[0])
        if info.cnt_count:
            with nogil:
                _read_uints(p, info.cnt_pos, info.cnt_type, info.cnt_count, info.bigendian,
                            &cnts[0])
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


