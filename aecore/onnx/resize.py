"""How one engine resize (F.interpolate's geometry) becomes ONNX: a Resize node when an ONNX
runtime is bound to give the engine's values, else the engine's own per-axis operator.

ONNX Resize, opset 18, sizes given for axes (2, 3) (so the batch axis stays free):
    nearest        coordinate_transformation_mode 'asymmetric', nearest_mode 'floor':
                   src = floor(dst / (out / in))                    (PyTorch's legacy nearest)
    nearest-exact  'half_pixel' + 'round_prefer_ceil':
                   src = round_half_up((dst + 0.5) / (out / in) - 0.5)
                       = floor((dst + 0.5) * in / out)
    bilinear       mode 'linear', 'align_corners' (align_corners=True) or 'pytorch_half_pixel'

In exact arithmetic these are the engine's rules; in float32 they are not always. The engine
(like PyTorch) multiplies by a float32 in / out, a runtime divides by a float32 out / in, and the
two land on different sides of an integer now and then (onnxruntime differs from PyTorch's
nearest for about 3% of the (in, out) pairs up to 60 -> 130, e.g. 14 -> 46; one ulp decides). So a
nearest resize is exported as Resize only when no index can depend on that rounding: for every
output position the exact source coordinate is either far from the rounding boundary or computed
exactly in float32 (the scale out / in representable). Otherwise it is exported as what the
engine computes: a Gather of the engine's own source table along each axis (exact, any runtime).
Bilinear is continuous across those boundaries, so rounding only moves values by ~1e-7; but
with scale_factor the engine keeps 1 / factor (not in / out), and for out == 1 ONNX's
'pytorch_half_pixel' reads pixel 0 where PyTorch reads the centre: those cases are exported as
the engine's interpolation matrices, y = A_h @ x @ A_w^T (two MatMuls).
"""

from fractions import Fraction

import numpy as np

from ..kernels.upsample import NEAREST_TABLES, interpolation_matrix

# How close (in source pixels, per pixel of input size) an exact coordinate may come to a
# rounding boundary before float32 arithmetic could put it on the other side: a few ulps of
# float32 (2**-24 relative) at the coordinate's magnitude, with room for three operations.
_ULPS = 64 * 2.0 ** -24

NEAREST_ATTRIBUTES = {
    "nearest": dict(coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    "nearest-exact": dict(coordinate_transformation_mode="half_pixel",
                          nearest_mode="round_prefer_ceil"),
}


def _float32_exact(numerator, denominator):
    """True when numerator / denominator is exactly a float32 (so a runtime's scale is exact)."""
    ratio = np.float32(numerator) / np.float32(denominator)
    return Fraction(float(ratio)) == Fraction(numerator, denominator)


def _nearest_axis_is_robust(mode, in_size, out_size, engine_table):
    """True when every runtime computing the ONNX rule of `mode` in float32 gets `engine_table`.

    The ONNX rule in exact arithmetic: floor(u) with u = dst * in / out ('nearest') or
    u = (dst + 0.5) * in / out ('nearest-exact'), clamped to [0, in - 1]. An index is safe when
    u is not within rounding distance of an integer, or is an integer that float32 reaches
    exactly (the scale out / in is a float32 and the quotient is exact)."""
    scale_exact = _float32_exact(out_size, in_size)
    margin = _ULPS * (in_size + 1)
    offset = Fraction(0) if mode == "nearest" else Fraction(1, 2)
    for dst, engine_index in enumerate(engine_table):
        u = (dst + offset) * Fraction(in_size, out_size)
        index = min(int(u // 1), in_size - 1)
        if index != int(engine_index):
            return False
        distance = min(u - (u // 1), (u // 1) + 1 - u)
        if distance == 0 and not scale_exact and u != 0:
            return False
        if 0 < distance < margin:
            return False
    return True


def nearest_tables(geom):
    """The engine's source index for each output row and column: int64 (out_h,), (out_w,)."""
    table = NEAREST_TABLES[geom.mode]
    return (np.asarray(table(geom.h, geom.out_h, geom.scale_h), dtype=np.int64),
            np.asarray(table(geom.w, geom.out_w, geom.scale_w), dtype=np.int64))


def nearest_resize_is_robust(geom):
    """True when ONNX Resize (NEAREST_ATTRIBUTES[geom.mode]) gives the engine's nearest resize."""
    rows, cols = nearest_tables(geom)
    return (_nearest_axis_is_robust(geom.mode, geom.h, geom.out_h, rows)
            and _nearest_axis_is_robust(geom.mode, geom.w, geom.out_w, cols))


def bilinear_resize_matches(geom):
    """True when ONNX Resize (linear, sizes given) follows the engine's bilinear coordinates:
    the engine's scale is in / out (a size was given, not a scale_factor) or the axis is a copy,
    and no axis has a single output pixel without align_corners."""
    for in_size, out_size, scale in ((geom.h, geom.out_h, geom.scale_h),
                                     (geom.w, geom.out_w, geom.scale_w)):
        if in_size == out_size:
            continue                          # a copy in both
        if geom.align_corners:
            continue                          # (in - 1) / (out - 1) in both
        if out_size == 1 or scale != in_size / out_size:
            return False
    return True


def bilinear_matrices(geom, dtype):
    """The engine's per-axis operators: A_h (out_h, h) and A_w^T (w, out_w)."""
    return (interpolation_matrix(geom, "h", dtype),
            np.ascontiguousarray(interpolation_matrix(geom, "w", dtype).T))
