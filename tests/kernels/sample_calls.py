"""One small, valid call of every registered kernel op: (op name, args), shared by the tests
that run each op once (the CUDA compile check, the registry's argument checks)."""

import numpy as np

from aecore.kernels import geometry


def sample_calls(dtype):
    """(op name, args) for one call of every registered op, on small arrays of `dtype`."""
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = rand(2, 3, 5, 5)
    conv = geometry.conv2d_geometry(x.shape, (4, 3, 3, 3), stride=2, padding="same", b_shape=(4,))
    conv_out = rand(2, 4, conv["out_h"], conv["out_w"])
    convt = geometry.conv_transpose2d_geometry(x.shape, (3, 4, 3, 3), stride=2, padding=1,
                                               output_padding=1, b_shape=(4,))
    convt_out = rand(2, 4, convt["out_h"], convt["out_w"])
    pool = geometry.max_pool2d_geometry(x.shape, 2, 2, "same")
    pool_out = rand(2, 3, pool["out_h"], pool["out_w"])
    argmax = np.zeros(pool_out.shape, dtype=np.int64)
    near = geometry.interpolate_geometry(x.shape, size=(7, 9), mode="nearest")
    bil = geometry.interpolate_geometry(x.shape, scale_factor=1.5, mode="bilinear", align_corners=False)
    return [
        ("conv2d_forward", (x, rand(4, 3, 3, 3), rand(4), conv)),
        ("conv2d_backward_input", (conv_out, rand(4, 3, 3, 3), conv)),
        ("conv2d_backward_weight", (conv_out, x, conv)),
        ("conv_transpose2d_forward", (x, rand(3, 4, 3, 3), rand(4), convt)),
        ("conv_transpose2d_backward_input", (convt_out, rand(3, 4, 3, 3), convt)),
        ("conv_transpose2d_backward_weight", (convt_out, x, convt)),
        ("max_pool2d_forward", (x, pool)),
        ("max_pool2d_backward", (pool_out, argmax, pool)),
        ("upsample_nearest_forward", (x, near)),
        ("upsample_nearest_backward", (rand(2, 3, 7, 9), near)),
        ("upsample_bilinear_forward", (x, bil)),
        ("upsample_bilinear_backward", (rand(2, 3, bil["out_h"], bil["out_w"]), bil)),
        ("relu_forward", (x,)),
        ("relu_backward", (rand(2, 3, 5, 5), x)),
        ("conv2d_backward_bias", (conv_out,)),
    ]
