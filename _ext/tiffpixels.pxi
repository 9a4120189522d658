# Included by tiffparse.pyx: pixel kernels.

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

