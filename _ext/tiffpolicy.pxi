# Included by tiffparse.pyx: the serving policy, the only copy of the rule
# (imgio.plugins.tiff.fastpath reads its verdict from the parse).

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
    R_PAGE_DIFFERS

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
    R_PAGE_DIFFERS: "page {d} is not stored like page 0",
}


cdef int64_t _volume_pages(const Info* info) noexcept nogil:
    """N if the first page's shaped description declares a volume of N > 1 pages, else 0.

    Only compressed volumes (their decoding is the work the fast path shares
    over the cores); an uncompressed one is one contiguous read for the plugin.
    The shape must be ``(N, length, width)`` or ``(N, length, width, spp)``,
    the series tifffile forms from N pages.
    """
    cdef int ndim = 4 if info.spp > 1 else 3
    if not info.has_shaped or info.shaped_ndim != ndim or info.shaped[0] <= 1:
        return 0
    if not (info.compression == 8 or info.compression == 32946):
        return 0
    if <uint64_t>info.shaped[1] != info.length or <uint64_t>info.shaped[2] != info.width:
        return 0
    if ndim == 4 and <uint64_t>info.shaped[3] != info.spp:
        return 0
    if info.shaped[0] >= MAXPAGES_HARD:
        return 0
    return info.shaped[0]


cdef int _same_page(const Info* first, Info* page) noexcept nogil:
    """Whether a later page of a volume is served and stored like the first.

    tifffile decodes every page of a shaped series with the first page's
    settings; the fast path serves the volume only when each page's own tags
    agree (and the page passes the rule by itself, without a description).
    """
    cdef uint64_t detail
    page.n_pages = 1
    if page.n_desc != 0 or _decline(page, &detail) != R_SERVED:
        return 0
    return (page.width == first.width and page.length == first.length
            and page.spp == first.spp and page.bps == first.bps
            and page.sampleformat == first.sampleformat
            and page.compression == first.compression
            and page.photometric == first.photometric and page.planar == first.planar
            and page.predictor == first.predictor and page.fillorder == first.fillorder
            and page.has_rps == first.has_rps and page.rowsperstrip == first.rowsperstrip
            and page.has_tilewidth == first.has_tilewidth
            and page.has_tilelength == first.has_tilelength
            and page.tilewidth == first.tilewidth and page.tilelength == first.tilelength
            and page.subfiletype == first.subfiletype
            and page.has_oldsubfiletype == first.has_oldsubfiletype
            and page.oldsubfiletype == first.oldsubfiletype
            and page.extrasamples_count == first.extrasamples_count
            and page.bps_count == first.bps_count and page.sf_count == first.sf_count
            and page.off_tag == first.off_tag and page.cnt_tag == first.cnt_tag
            and page.off_count == first.off_count and page.cnt_count == first.cnt_count)


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
    cdef int tiled, lead
    detail[0] = 0
    if info.n_pages != 1:
        if info.pages_capped or info.n_pages != _volume_pages(info):
            return R_PAGES
        if info.page_differs:
            detail[0] = <uint64_t>info.page_differs
            return R_PAGE_DIFFERS
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
        lead = 1 if info.n_pages > 1 else 0     # a volume's leading page axis
        if info.shaped_ndim != 2 + lead + (1 if info.spp != 1 else 0):
            return R_SHAPED
        if info.spp != 1 and <uint64_t>info.shaped[2 + lead] != info.spp:
            return R_SHAPED
        if <uint64_t>info.shaped[lead] != info.length \
                or <uint64_t>info.shaped[lead + 1] != info.width:
            return R_SHAPED
    return R_SERVED


def _reason(int code, uint64_t detail, uint64_t sampleformat):
    if code == R_SERVED:
        return None
    msg = _DECLINE_MESSAGES[code]
    return msg.format(d=detail, e=sampleformat, k=_KIND_NAMES.get(<int>detail))


cdef inline uint64_t _header_size(const Info* info) noexcept nogil:
    return 16 if info.bigtiff else 8

