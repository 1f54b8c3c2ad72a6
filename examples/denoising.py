"""A denoising autoencoder, start to finish: noisy digits in, clean digits out, PSNR before and after.

    python examples/denoising.py                     # 6000 synthetic digits, 4 epochs (+5 dB)
    python examples/denoising.py --quick --out /tmp/dae
    python examples/denoising.py --data mnist --epochs 5

The model is the classic convolutional autoencoder (conv 32, 32, 16 with 2x2 max-pooling, nearest
resizes and convs back up) trained on CORRUPTED inputs against the CLEAN images
(Vincent et al. 2008): x_noisy = clip(x + 0.5 * N(0, 1), 0, 1), loss = BCE(decode(encode(x_noisy)), x).
It cannot copy its input (the input is wrong), so it has to learn what digits look like.

Quality is the peak signal-to-noise ratio against the clean image, PSNR = 10 log10(1 / MSE) dB
(pixel values in [0, 1]); higher is better, +3 dB halves the squared error. We print it for the
noisy input, for the untrained model, and for the trained model, on held-out images, and write
a picture: rows of noisy inputs, the model's outputs, and the clean images. With the defaults
(synthetic digits) PSNR goes from about 9.4 dB for the noisy inputs to about 14.8 dB.
"""

import argparse
import os
import time

import numpy as np

import aecore as ae
from aecore import optim
from aecore.data import DataLoader, load_dataset, train_val_split
from aecore.io.png import write_png
from aecore.viz import labelled_grid
from aecore.models import build_model


def psnr(a, b):
    """Mean PSNR in dB over a batch of images in [0, 1]."""
    mse = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def denoise(model, noisy, batch_size=256):
    """The model's output probabilities for noisy inputs (no graph)."""
    model.eval()
    outs = [model.reconstruct(noisy[i:i + batch_size]).numpy() for i in range(0, len(noisy), batch_size)]
    model.train()
    return np.concatenate(outs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", help="synthetic, mnist, fashion-mnist or a path")
    parser.add_argument("--images", type=int, default=6000, help="how many images to use")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--noise-level", type=float, default=0.5, help="std of the Gaussian noise")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    parser.add_argument("--quick", action="store_true", help="96 images, 1 epoch (a smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs, args.batch_size = 96, 1, 32

    ae.manual_seed(args.seed)
    images = load_dataset(args.data, split="train", n=args.images, seed=args.seed).images
    train_idx, val_idx = train_val_split(len(images), val_fraction=0.2, seed=args.seed)
    train, held_out = images[train_idx], images[val_idx]
    print(f"data: {args.data}, {len(train)} training and {len(held_out)} held-out images "
          f"{images.shape[1:]}")

    model = build_model("dae", base="cae", noise="gaussian", noise_level=args.noise_level)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    # one fixed corruption of the held-out images, so every PSNR below is on the same inputs
    ae.manual_seed(args.seed + 1)
    noisy = model.corrupt(held_out)
    psnr_noisy = psnr(noisy, held_out)
    psnr_untrained = psnr(denoise(model, noisy), held_out)
    print(f"PSNR of the noisy inputs:       {psnr_noisy:6.2f} dB")
    print(f"PSNR of the untrained model:    {psnr_untrained:6.2f} dB")

    ae.manual_seed(args.seed)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    for epoch in range(1, args.epochs + 1):
        started, total, count = time.perf_counter(), 0.0, 0
        for batch, _ in loader:
            loss, _ = model.loss(batch)          # corrupts the batch afresh, BCE against the clean one
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(batch), count + len(batch)
        print(f"epoch {epoch}: training BCE {total / count:.4f}  held-out PSNR "
              f"{psnr(denoise(model, noisy), held_out):6.2f} dB  ({time.perf_counter() - started:.1f} s)")

    denoised = denoise(model, noisy)
    psnr_trained = psnr(denoised, held_out)
    print(f"PSNR of the trained model:      {psnr_trained:6.2f} dB   "
          f"({psnr_trained - psnr_noisy:+.2f} dB over the noisy input)")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "denoising.png")
    n = min(8, len(held_out))
    rows = np.concatenate([noisy[:n], denoised[:n], held_out[:n]])   # noisy / denoised / clean
    write_png(path, labelled_grid(rows, nrow=n, row_labels=["noisy input", "denoised", "clean"]))
    print(f"wrote {path} (rows: noisy input, denoised, clean)")
    return {"psnr_noisy": psnr_noisy, "psnr_untrained": psnr_untrained,
            "psnr_trained": psnr_trained, "png": path}


if __name__ == "__main__":
    main()
