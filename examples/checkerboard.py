"""Why a stride-2 transposed convolution paints checkerboards and resize + convolution does not.

    python examples/checkerboard.py                 # writes checkerboard.png in examples/output/
    python examples/checkerboard.py --out /tmp/cb

A transposed convolution with stride 2 and a 3x3 kernel scatters every input pixel into a 3x3
patch of the output, patches two pixels apart. Along one axis, output position o receives the
kernel taps k with o = 2*i + k - 1 (padding 1):

    o even  ->  k = 1             one tap
    o odd   ->  k = 0 and k = 2   two taps

so in 2-D the four "stride phases" (o_y % 2, o_x % 2) are sums of 1, 2, 2 and 4 terms: even a
constant image and a uniform kernel come out as a checkerboard, before any training
(Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016). Training can
learn to cancel it, but it starts from there and it often leaves traces.

Nearest-neighbour resize x2 followed by a 3x3 convolution (the classic CAE's decoder) treats
every output pixel alike: each is a sum of exactly 9 taps over the resized image, so a constant
image stays constant (apart from the zero padding at the border).

The measure printed: the four phase means of the output's interior, and their spread
(standard deviation / overall mean). 0 means no checkerboard. A 4x4 kernel with stride 2 (size
divisible by the stride) overlaps evenly and also scores 0 on a constant image; with random
weights it still differs per phase, as every phase sees different taps.
"""

import argparse
import os

import numpy as np

import aecore as ae
import aecore.functional as F
from aecore.data import synthetic_digits
from aecore.io.png import image_grid, write_png


def transposed_conv(x, weight):
    """Stride-2 transposed conv, padding 1, output_padding 1: (N, C, H, W) -> (N, C', 2H, 2W).
    weight: (Cin, Cout, k, k)."""
    k = weight.shape[-1]
    padding, output_padding = (1, 1) if k == 3 else (1, 0)  # both give exactly 2H for k = 3, 4
    return F.conv_transpose2d(ae.tensor(x), ae.tensor(weight), stride=2, padding=padding,
                              output_padding=output_padding).numpy()


def resize_conv(x, weight):
    """Nearest resize x2, then a 3x3 'same' conv. weight: (Cout, Cin, 3, 3)."""
    up = F.interpolate(ae.tensor(x), scale_factor=2, mode="nearest")
    return F.conv2d(up, ae.tensor(weight), padding="same").numpy()


def phase_means(y, border=2):
    """Means of the 4 stride phases over the interior (the zero padding biases the border)."""
    inner = y[..., border:-border, border:-border]   # border is even: phases keep their parity
    return np.array([[inner[..., py::2, px::2].mean() for px in (0, 1)] for py in (0, 1)])


def checkerboard_score(y):
    """Spread of the phase means relative to the mean magnitude: 0 = no checkerboard."""
    means = phase_means(y)
    return float(means.std() / (np.abs(means).mean() + 1e-12))


def to_picture(y, scale=6):
    """(H, W) -> [0, 1] and enlarged (each pixel a scale x scale block) so the pattern shows."""
    lo, hi = float(y.min()), float(y.max())
    picture = (y - lo) / (hi - lo) if hi > lo else np.full_like(y, 0.5)
    return np.kron(picture, np.ones((scale, scale)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "output"), help="folder for the PNG")
    parser.add_argument("--size", type=int, default=14, help="input height and width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="(accepted; the example is quick)")
    args = parser.parse_args(argv)
    ae.manual_seed(args.seed)
    s = args.size

    constant = np.ones((1, 1, s, s), dtype=np.float32)
    digit = synthetic_digits(1, seed=args.seed, image_size=max(2 * s, 8))[0]     # (1, 1, 2s, 2s)
    digit = F.interpolate(ae.tensor(digit), size=(s, s), mode="bilinear").numpy()  # a smooth input

    uniform3 = np.full((1, 1, 3, 3), 1.0 / 9, dtype=np.float32)
    uniform4 = np.full((1, 1, 4, 4), 1.0 / 16, dtype=np.float32)
    # untrained layers as a model starts: nn.ConvTranspose2d / nn.Conv2d default (Kaiming) init
    random_t = ae.nn.ConvTranspose2d(1, 1, 3, stride=2).weight.numpy()
    random_c = ae.nn.Conv2d(1, 1, 3).weight.numpy()
    random_c = random_c if random_c.sum() > 0 else -random_c   # a positive mean keeps images readable
    random_t = random_t if random_t.sum() > 0 else -random_t

    rows = [
        ("constant input, uniform 3x3 kernel", constant, uniform3, uniform3, uniform4),
        ("digit input, uniform 3x3 kernel", digit, uniform3, uniform3, uniform4),
        ("digit input, random (untrained) 3x3 kernel", digit, random_t, random_c, None),
    ]
    tiles, scores = [], {}
    print(f"{'':44} {'transposed conv':>16} {'resize + conv':>14} {'transposed 4x4':>15}")
    for name, x, w_t, w_c, w_t4 in rows:
        y_t = transposed_conv(x, w_t)[0, 0]
        y_c = resize_conv(x, w_c)[0, 0]
        y_t4 = transposed_conv(x, w_t4)[0, 0] if w_t4 is not None else None
        score = (checkerboard_score(y_t), checkerboard_score(y_c),
                 checkerboard_score(y_t4) if y_t4 is not None else None)
        scores[name] = score
        t4 = f"{score[2]:15.4f}" if score[2] is not None else f"{'-':>15}"
        print(f"{name:44} {score[0]:16.4f} {score[1]:14.4f} {t4}")
        input_picture = to_picture(np.kron(x[0, 0], np.ones((2, 2))))  # shown at output size
        tiles += [input_picture, to_picture(y_t), to_picture(y_c)]

    means = phase_means(transposed_conv(constant, uniform3)[0, 0])
    print("\ntaps per output pixel of the transposed conv on the constant input "
          "(phase means x 9; rows: y % 2, columns: x % 2):")
    for row in means * 9:
        print("    " + "  ".join(f"{v:.2f}" for v in row))

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "checkerboard.png")
    grid = image_grid(np.stack(tiles)[:, None], nrow=3, padding=4, pad_value=1.0)
    write_png(path, grid)
    print(f"\nwrote {path}: one row per input above; columns: input (resized for display), "
          "transposed conv, resize + conv")
    return {"scores": scores, "png": path}


if __name__ == "__main__":
    main()
