"""``imgio preview``: a picture of the data (projection and slice montage, or a thumbnail)."""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ._common import _props, _selection
from ._convert import _Source


# -- preview -------------------------------------------------------------------------------
def _stretch(images: list[np.ndarray], low: float = 0.5, high: float = 99.5) -> list[np.ndarray]:
    """Contrast-stretch images jointly to uint8 between two percentiles."""
    sample = np.concatenate([np.asarray(im, np.float64).ravel()[:: max(1, im.size // 200_000)]
                             for im in images])
    finite = sample[np.isfinite(sample)]
    lo, hi = (np.percentile(finite, [low, high]) if finite.size else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1
    out = []
    for im in images:
        scaled = (np.asarray(im, np.float64) - lo) * (255.0 / (hi - lo))
        out.append(np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8))
    return out


def _to_plane(frame: np.ndarray) -> np.ndarray:
    """A frame as one picture: (Y, X) or (Y, X, 3); extra leading axes are max-projected."""
    frame = np.asarray(frame)
    if frame.dtype == bool:
        frame = frame.astype(np.uint8)
    if np.iscomplexobj(frame):
        frame = np.abs(frame)
    rgb = frame.ndim >= 3 and frame.shape[-1] in (3, 4)
    core = 3 if rgb else 2
    while frame.ndim > core:
        frame = frame.max(axis=0)
    if rgb:
        frame = frame[..., :3]
    return frame


def _resample(img: np.ndarray, size: tuple[int, int]):
    """``img`` (uint8) as a PIL image of ``size`` = (width, height).

    Shrinking averages every source pixel of a target pixel (an area mean, so
    thin lines and small images are not subsampled away); enlarging repeats
    pixels, so the data's pixels stay visible as squares.
    """
    from PIL import Image
    pil = Image.fromarray(img)
    if pil.size == size:
        return pil
    shrink = size[0] < pil.size[0] or size[1] < pil.size[1]
    return pil.resize(size, Image.Resampling.BOX if shrink else Image.Resampling.NEAREST)


#: picture formats ``preview`` writes, by extension
PREVIEW_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _preview_format(out: Any) -> str:
    ext = os.path.splitext(os.fspath(out))[1].lower()
    if ext not in PREVIEW_FORMATS:
        raise ValueError(f"preview writes {', '.join(PREVIEW_FORMATS)} pictures; "
                         f"{os.fspath(out)!r} has the extension {ext or '(none)'!r}.")
    return ext


def _label(draw, xy: tuple[int, int], text: str, mode: str) -> None:
    """Text on a dark box with a light outline: legible on any background."""
    x, y = xy
    try:
        left, top, right, bottom = draw.textbbox((x, y), text)
    except AttributeError:  # pragma: no cover - Pillow < 8
        w, h = draw.textsize(text)
        left, top, right, bottom = x, y, x + w, y + h
    box = (left - 2, top - 2, right + 2, bottom + 2)
    dark, light = (0, 255) if mode == "L" else ((0, 0, 0), (255, 255, 0))
    draw.rectangle(box, fill=dark, outline=(128 if mode == "L" else (128, 128, 128)))
    draw.text((x, y), text, fill=light)


def preview(src: Any, out: Any, *, n_slices: int = 8, size: int = 1024,
            plugin: str | None = None, progress: Any = False, dataset: str | None = None,
            series: int | None = None, level: int | None = None) -> tuple[int, int]:
    """Write a PNG or JPEG picture of an image or a volume.

    A volume (a stack along its first axis) becomes its maximum-intensity
    projection on the left and a grid of ``n_slices`` evenly spaced slices on
    the right, contrast-stretched between the 0.5 and 99.5 percentiles.  A 2-D
    gray or RGB image becomes a stretched thumbnail.  Every tile is resampled
    from its whole slice (an area mean when shrinking), the tiles fill the
    projection's height exactly, and labels sit on a dark box.  Frames are read
    one at a time, so memory holds one frame, the projection and the chosen
    slices.

    Parameters
    ----------
    src : str or pathlib.Path
        The image, volume, folder or glob.
    out : str or pathlib.Path
        The picture to write: ``.png``, ``.jpg`` or ``.jpeg``.
    n_slices : int, optional
        How many slices the montage shows.
    size : int, optional
        Longest side of the picture in pixels.
    plugin : str, optional
        Read ``src`` with this plugin.
    progress : bool or callable, optional
        As for :func:`convert`.
    dataset, series, level : optional
        Which ndimage to show (the plugins' selection keywords).

    Returns
    -------
    tuple of int
        (height, width) of the picture written.
    """
    from PIL import Image, ImageDraw

    from ..core.imopen import imopen
    from ..progress import make_progress

    ext = _preview_format(out)
    sel = _selection(dataset, series, level)
    with imopen(src, "r", plugin=plugin) as reader:
        props = _props(reader, src, sel)
        source = _Source(reader, props, sel)
        if source.kind == "image":
            plane = _to_plane(next(iter(source.frames())))
            (img,) = _stretch([plane])
            h, w = img.shape[:2]
            scale = size / max(h, w) if max(h, w) > size else max(1, min(size, 512) // max(h, w))
            pil = _resample(img, (max(1, round(w * scale)), max(1, round(h * scale))))
            return _save_picture(np.asarray(pil), out, ext)
        n = source.n
        wanted = sorted({int(round(x)) for x in np.linspace(0, n - 1, max(1, min(n_slices, n)))})
        mip = None
        slices: dict[int, np.ndarray] = {}
        with make_progress(progress, n, "preview") as report:
            for i, frame in enumerate(source.frames()):
                plane = _to_plane(frame)
                if mip is None:
                    mip = plane.copy()
                elif mip.shape == plane.shape:  # frames of another shape: slices only
                    np.maximum(mip, plane, out=mip)
                if i in wanted:
                    slices[i] = plane
                report(i + 1)
    if mip is None:
        raise ValueError(f"{src} holds no frames to preview.")
    (mip8,) = _stretch([mip])
    tiles = _stretch([slices[i] for i in sorted(slices)])
    h, w = mip8.shape[:2]
    rows = 1 if len(tiles) == 1 else 2
    cols = max(1, math.ceil(len(tiles) / rows))
    # the picture's scale first, so every tile is resampled once, from the whole slice
    gap = 4

    def layout(scale):
        th = max(8, (round(h * scale) - gap * (rows - 1)) // rows)
        H = th * rows + gap * (rows - 1)  # the tiles fill the projection's height: no band
        W = max(8, round(w * H / h))
        tw = max(1, round(w * th / h))
        return W, H, th, tw, W + gap + cols * (tw + gap) - gap

    longest = max(layout(1.0)[4], layout(1.0)[1])
    target = size if longest > size else max(longest, min(size, 512))
    scale = target / longest
    W, H, th, tw, total = layout(scale)
    while max(total, H) > target and scale > 1e-3:
        scale *= 0.99
        W, H, th, tw, total = layout(scale)
    mode = "RGB" if mip8.ndim == 3 else "L"
    gray = 96 if mode == "L" else (96, 96, 96)  # the gaps between tiles
    canvas = Image.new(mode, (W + gap + cols * (tw + gap) - gap, H), gray)
    canvas.paste(_resample(mip8, (W, H)).convert(mode), (0, 0))
    labels = [("MIP", (0, 0))]
    letter = props.axes[0] if props.axes and props.axes[0] not in "QI" else "#"
    for k, (i, tile) in enumerate(zip(sorted(slices), tiles)):
        x = W + gap + (k % cols) * (tw + gap)
        y = (k // cols) * (th + gap)
        canvas.paste(_resample(tile, (tw, th)).convert(mode), (x, y))
        labels.append((f"{letter}={i}", (x, y)))
    draw = ImageDraw.Draw(canvas)
    for text, (x, y) in labels:
        _label(draw, (x + 4, y + 3), text, mode)
    return _save_picture(np.asarray(canvas), out, ext)


def _save_picture(img: np.ndarray, out: Any, ext: str = ".png") -> tuple[int, int]:
    """Write ``img`` as PNG or JPEG (by ``ext``) through imgio's Pillow plugin."""
    import imgio.v3 as iio
    iio.imwrite(out, img, extension=ext)
    return img.shape[0], img.shape[1]


def _cmd_preview(args) -> int:
    out = args.output
    if out is None:
        base = os.path.basename(os.path.normpath(str(args.file)).rstrip("*"))
        out = (base.split(".")[0] or "preview") + "_preview.png"
    h, w = preview(args.file, out, n_slices=args.slices, size=args.size, plugin=args.plugin,
                   progress=not args.quiet, dataset=args.dataset, series=args.series,
                   level=args.level)
    if not args.quiet:
        print(f"imgio preview: wrote {out} ({w} x {h})")
    return 0


