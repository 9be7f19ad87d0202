"""Video-pattern mode frames: 24 one-bit patterns packed into one 24-bit RGB888 video frame in
the DLPC900's bit-plane order. Pure functions (Numba kernels), no device state.

In video-pattern mode (display mode 2, DLPU018 2.4.1) the controller takes 24-bit frames on its
video input (DisplayPort / HDMI, up to 120 Hz) and shows each frame's bit planes as one-bit
patterns, in the order of its pattern LUT. Which bit plane a LUT entry shows is its "bit
position": DLPU018J, Pattern Display LUT Definition (USB 0x1A34), row "bytes 11:10, bits
15:11: image pattern bit position (frame in video pattern mode), valid range 0-23" (= byte 11
bits 7:3). DLPU018 gives only that range, no colour mapping; the mapping below is TI's for the
DLPC350 (DLPC350 Programmer's Guide DLPU010G, Table 2-70 "Pattern Number Mapping"; LightCrafter
4500 User's Guide DLPU011F, Figure 4-1 "Relationship Between Bit-Planes and 24-bit RGB
Images"), which DLPC900 host code follows; a bench check confirms it (docs/dlpc900.md):

    bit position  0..7   = G0..G7   (green channel, bit 0 first)
    bit position  8..15  = R0..R7   (red channel)
    bit position 16..23  = B0..B7   (blue channel)

so pattern k of a frame (LUT entry with bit position k) is bit k % 8 of channel
BIT_PLANE_CHANNEL[k // 8] of every RGB888 pixel. A frame here is an (H, W, 3) uint8 array in
R, G, B channel order, the byte layout of an RGB888 frame buffer (pygame surfaces, SDL
textures).
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import InputError
from ..geometry import DmdLayout

PATTERNS_PER_FRAME = 24
RED, GREEN, BLUE = 0, 1, 2
BIT_PLANE_CHANNEL = (GREEN, RED, BLUE)
"""RGB888 channel (index into the last axis of a frame) of bit positions 0-7, 8-15, 16-23."""


def bit_plane(k: int) -> tuple[int, int]:
    """(channel, bit) of the RGB888 frame that holds pattern k (bit position k, 0..23)."""
    if not 0 <= k < PATTERNS_PER_FRAME:
        raise InputError(f"a video frame holds bit positions 0..23, got {k}")
    return BIT_PLANE_CHANNEL[k // 8], k % 8


_CHANNEL = np.array([bit_plane(k)[0] for k in range(PATTERNS_PER_FRAME)], np.int64)
_BIT = np.array([bit_plane(k)[1] for k in range(PATTERNS_PER_FRAME)], np.uint8)


def _check_bits(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.view(np.uint8)
    if a.dtype.kind not in "iu":
        raise InputError(f"{what} must be bool (or integer 0/1), got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise InputError(f"{what} must be binary: integer patterns may hold only 0 and 1")
    return a.astype(np.uint8)


# --- full-resolution patterns ----------------------------------------------------------------


@numba.njit(cache=True)
def _pack_images(p, channel, bit, out):
    n, h, w = p.shape
    out[:, :, :] = 0
    for k in range(n):  # pattern-major: every read is contiguous
        ch = channel[k]
        sh = bit[k]
        pk = p[k]
        for y in range(h):
            src = pk[y]
            dst = out[y]
            for x in range(w):
                dst[x, ch] |= src[x] << sh


def pack_frame(patterns: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB888 frame from (n <= 24, H, W) binary patterns; pattern k goes to
    bit position k (see the module docstring), unused bit planes are 0. out: a reusable
    (H, W, 3) uint8 buffer."""
    p = np.asarray(patterns)
    if p.ndim != 3 or not 1 <= p.shape[0] <= PATTERNS_PER_FRAME:
        raise InputError(f"pack_frame needs (1..24, H, W) patterns, got shape {p.shape}")
    p8 = np.ascontiguousarray(_check_bits(p, "patterns"))
    out = _output(out, p.shape[1], p.shape[2])
    _pack_images(p8, _CHANNEL, _BIT, out)
    return out


def unpack_frame(frame: np.ndarray, n: int = PATTERNS_PER_FRAME) -> np.ndarray:
    """(n, H, W) bool: the first n bit planes of an RGB888 frame, in LUT bit-position order."""
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
        raise InputError(f"a video frame is (H, W, 3) uint8, got {f.dtype} {f.shape}")
    if not 1 <= n <= PATTERNS_PER_FRAME:
        raise InputError(f"a video frame holds 1..24 bit planes, got {n}")
    out = np.empty((n,) + f.shape[:2], bool)
    for k in range(n):
        ch, bit = bit_plane(k)
        out[k] = (f[:, :, ch] >> bit) & 1
    return out


def _output(out: np.ndarray | None, h: int, w: int) -> np.ndarray:
    if out is None:
        return np.empty((h, w, 3), np.uint8)
    if out.shape != (h, w, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise InputError(f"out must be a C-contiguous ({h}, {w}, 3) uint8 array, got "
                         f"{out.dtype} {out.shape}")
    return out


# --- fast path: element vectors + layout ---------------------------------------------------


@numba.njit(cache=True)
def _layout_lines(e, channel, bit, rows, cols, x0, mp, lines):
    """lines[r] = the RGB888 bytes of one mirror line through grid row r of the element
    patterns e (n, m) on mp x mp macro-pixels from column x0; OFF outside the grid. Pattern k
    sets bit bit[k] of channel channel[k]."""
    n, m = e.shape
    planes = np.zeros((3, m), np.uint8)
    for k in range(n):  # branch-free, contiguous: vectorised by LLVM
        dst = planes[channel[k]]
        ek = e[k]
        sh = bit[k]
        for j in range(m):
            dst[j] |= ek[j] << sh
    lines[:, :] = 0
    for r in range(rows):
        line = lines[r]
        for c in range(min(cols, m - r * cols)):
            j = r * cols + c
            cr, cg, cb = planes[0, j], planes[1, j], planes[2, j]
            base = 3 * (x0 + c * mp)
            for dx in range(mp):
                line[base + 3 * dx] = cr
                line[base + 3 * dx + 1] = cg
                line[base + 3 * dx + 2] = cb


def pack_frame_elements(
    elements: np.ndarray, layout: DmdLayout, out: np.ndarray | None = None
) -> np.ndarray:
    """(dmd_height, dmd_width, 3) uint8 frame of (n <= 24, layout.n_elements) binary element
    patterns, rendered by `layout` without building full images: equal to
    pack_frame(layout.render(elements)) (property test), at about memory-copy speed."""
    e = np.asarray(elements)
    if e.ndim != 2 or e.shape[1] != layout.n_elements or not 1 <= e.shape[0] <= 24:
        raise InputError(
            f"element patterns for one video frame must have shape (1..24, "
            f"{layout.n_elements}), got {e.shape}"
        )
    e8 = np.ascontiguousarray(_check_bits(e, "element patterns"))
    out = _output(out, layout.dmd_height, layout.dmd_width)
    x0, y0 = layout.origin
    rows, mp, w3 = layout.grid_rows, layout.macro_pixel, layout.dmd_width * 3
    lines = np.empty((rows, w3), np.uint8)
    _layout_lines(e8, _CHANNEL, _BIT, rows, layout.grid_cols, x0, mp, lines)
    flat = out.reshape(layout.dmd_height, w3)
    flat[:y0] = 0
    # each grid row's line covers mp mirror lines: one broadcast copy per grid row
    grid = flat[y0 : y0 + rows * mp].reshape(rows, mp, w3)
    np.copyto(grid, lines[:, None, :])
    flat[y0 + rows * mp :] = 0
    return out


def pack_frames_elements(elements: np.ndarray, layout: DmdLayout) -> np.ndarray:
    """(F, H, W, 3) uint8 frames of (N, n_elements) element patterns, 24 per frame in order
    (pattern i -> frame i // 24, bit position i % 24); the last frame's unused planes are 0."""
    e = np.asarray(elements)
    if e.ndim != 2 or e.shape[0] < 1:
        raise InputError(f"element patterns must have shape (N >= 1, n_elements), got {e.shape}")
    n_frames = -(-e.shape[0] // PATTERNS_PER_FRAME)
    out = np.empty((n_frames, layout.dmd_height, layout.dmd_width, 3), np.uint8)
    for f in range(n_frames):
        pack_frame_elements(e[f * 24 : (f + 1) * 24], layout, out[f])
    return out
