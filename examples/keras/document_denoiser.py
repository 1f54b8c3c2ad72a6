"""The Keras kernel of Kaggle's "Denoising Dirty Documents": a convolutional autoencoder that
turns stained, creased scans of text pages into clean ones, ported layer by layer.

    python examples/keras/document_denoiser.py                    # 48 + 12 pages, 80 epochs of 12
    python examples/keras/document_denoiser.py --quick            # 4 + 2 crops of 64 x 128, 1 epoch
    python examples/keras/document_denoiser.py --filters 64,128   # the kernel's own widths

The pages: nothing is downloaded, so the dirty / clean pairs are generated, Kaggle's size (258 x
540, one grey channel, paper = 1), by aecore.data.make_documents; page k depends only on (--seed,
k). The first --pages train, the next --held-out validate. --crop HxW keeps the centre of each
page (the network is fully convolutional, so it trains on any even size).

The model: Conv2D 3x3 64 and 128 'same' with ReLU, MaxPooling2D 2x2 'same' (258 x 540 -> 129 x
270), Conv2D 128 and 64, UpSampling2D 2x2 back to 258 x 540, and a sigmoid Conv2D to one channel;
after each pair of convs a BatchNormalization, and a Dropout(0.5) after the pooling. Keras'
BatchNormalization defaults are momentum 0.99 (the share of the old running average: PyTorch's
momentum=0.01) and epsilon 1e-3; its running variance takes the biased batch variance where
PyTorch's (and so aecore's) takes the unbiased one, a difference of n / (n - 1) over
12 x 258 x 540 pixels per channel. Loss: mean squared error on the sigmoid's output, as
the kernel compiles it (loss='mean_squared_error'); Keras' Adam; Glorot-uniform weights, zero
biases. The kernel's 80 epochs in batches of 12 are kept, but its 64 and 128 filters at 258 x
540 are too heavy for two CPU cores, so the default is --filters 8,16. Measured on two CPU cores
shared with other work, an epoch of the 48 pages took 33 s with 16,32 (80 epochs: 45 minutes)
and 2 to 10 s with 8,16 (80 epochs: 5 minutes; without the BatchNormalization and Dropout
layers, the held-out PSNR went 15.1 dB dirty -> 20.6 dB denoised, the faint rims of stains and
creases being what was left).

Writes results.json (loss / val_loss per epoch; the PSNR of the dirty held-out pages and of the
denoised ones, both against the clean pages) and pages.png (dirty, denoised, clean).

The shared flags --data, --data-root and --limit: --data takes only 'synthetic' (the pages are
generated), --data-root is refused, and --limit N caps the training pages as it caps the images
of the other tutorials.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # keras_port.py beside us

import aecore as ae  # noqa: E402
from aecore import losses, nn, optim  # noqa: E402
from aecore.data import make_documents  # noqa: E402
from aecore.viz import labelled_grid  # noqa: E402
from keras_port import (command_line, finish_arguments, fit, predict, psnr,  # noqa: E402
                        write_results)

PAGE_SIZE = (258, 540)          # Kaggle's shorter pages, height x width
DEFAULTS = {"pages": 48, "held_out": 12, "crop": "258x540"}   # this tutorial's own flags
QUICK = {"pages": 4, "held_out": 2, "crop": "64x128"}         # --quick's, where not given
SHOWN_PAGES = 3                 # held-out pages in the picture: 3 x 540 pixels wide


def document_denoiser(filters=(8, 16)):
    """The kernel's model, NCHW: (N, 1, H, W) -> (N, 1, H, W) in (0, 1), for even H and W.
    filters: (small, large), the kernel's (64, 128)."""
    small, large = filters
    model = nn.Sequential(
        # encoder
        nn.Conv2d(1, small, 3, padding="same"), nn.ReLU(),      # Conv2D(64, (3, 3), activation='relu', padding='same')
        nn.Conv2d(small, large, 3, padding="same"), nn.ReLU(),  # Conv2D(128, (3, 3), ...)
        nn.BatchNorm2d(large, eps=1e-3, momentum=0.01),         # BatchNormalization() (docstring)
        nn.MaxPool2d(2, padding="same"),                        # MaxPooling2D((2, 2), padding='same'): H/2 x W/2
        nn.Dropout(0.5),                                        # Dropout(0.5)
        # decoder
        nn.Conv2d(large, large, 3, padding="same"), nn.ReLU(),  # Conv2D(128, (3, 3), ...)
        nn.Conv2d(large, small, 3, padding="same"), nn.ReLU(),  # Conv2D(64, (3, 3), ...)
        nn.BatchNorm2d(small, eps=1e-3, momentum=0.01),         # BatchNormalization()
        nn.Upsample(scale_factor=2),                            # UpSampling2D((2, 2)): H x W
        nn.Conv2d(small, 1, 3, padding="same"), nn.Sigmoid(),   # Conv2D(1, (3, 3), activation='sigmoid', ...)
    )
    return nn.init.keras_defaults_(model)                       # glorot_uniform kernels, zero biases


def filter_pair(text):
    """'8,16' -> (8, 16): --filters, the widths of the outer and the inner convolutions."""
    try:
        small, large = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--filters: expected two integers like 8,16, got {text!r}") from None
    if small < 1 or large < 1:
        raise ValueError(f"--filters: expected positive integers, got {text!r}")
    return small, large


def crop_size(text):
    """'64x128' -> (64, 128): --crop, height x width, both even and at most the page's."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--crop: expected HEIGHTxWIDTH like 64x128, got {text!r}") from None
    if not (0 < height <= PAGE_SIZE[0] and 0 < width <= PAGE_SIZE[1]):
        raise ValueError(f"--crop: expected at most {PAGE_SIZE[0]}x{PAGE_SIZE[1]}, got {text!r}")
    if height % 2 or width % 2:   # MaxPooling2D 'same' then UpSampling2D: 65 -> 33 -> 66
        raise ValueError(f"--crop: expected an even height and width, got {text!r}")
    return height, width


def centre_crop(pages, size):
    """The centre size = (h, w) of pages (N, C, H, W) -> (N, C, h, w)."""
    top, left = (pages.shape[2] - size[0]) // 2, (pages.shape[3] - size[1]) // 2
    return pages[:, :, top:top + size[0], left:left + size[1]]


def parse_arguments(argv):
    """The shared flags (keras_port.command_line) and this tutorial's own, checked."""
    parser = command_line(__doc__.splitlines()[0], data="synthetic", epochs=80, batch_size=12)
    parser.epilog = ("The pages are generated (aecore.data.make_documents): --data takes only "
                     "'synthetic', and --limit N caps --pages. --quick here: 4 + 2 pages cropped "
                     "to 64x128, 1 epoch.")
    # None until parsed, as in keras_port: a value given is told from one left to the default
    parser.add_argument("--pages", type=int, help="training pages (default 48)")
    parser.add_argument("--held-out", type=int, help="held-out pages (default 12)")
    parser.add_argument("--crop", metavar="HxW",
                        help="train and test on the centre HxW of each page (default the whole "
                             "258x540 page)")
    parser.add_argument("--filters", default="8,16", metavar="SMALL,LARGE",
                        help="the convolutions' widths (default 8,16; the kernel's: 64,128)")
    args = finish_arguments(parser, argv, "document_denoiser")
    if args.data != "synthetic":
        parser.error(f"--data: the pages are generated, so only 'synthetic' is taken, "
                     f"got {args.data!r}")
    if args.data_root is not None:
        parser.error(f"--data-root: no data set is read, got {args.data_root!r}")
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, QUICK[name] if args.quick else default)
    try:
        args.filters = filter_pair(args.filters)
        args.crop = crop_size(args.crop)
    except ValueError as e:
        parser.error(str(e))
    for flag, value in (("--pages", args.pages), ("--held-out", args.held_out)):
        if value < 1:
            parser.error(f"{flag} must be a positive integer, got {value}")
    if args.limit is not None:
        args.pages = min(args.pages, args.limit)
    return args


def main(argv=None):
    args = parse_arguments(argv)
    dirty, clean = make_documents(args.pages + args.held_out, *PAGE_SIZE, seed=args.seed)
    dirty, clean = centre_crop(dirty, args.crop), centre_crop(clean, args.crop)  # (N, 1, H, W)
    x_train, y_train = dirty[:args.pages], clean[:args.pages]
    x_val, y_val = dirty[args.pages:], clean[args.pages:]
    print(f"data: {args.pages} training and {args.held_out} held-out pages "
          f"{x_train.shape[1:]}, filters {args.filters}")

    ae.manual_seed(args.seed)
    model = document_denoiser(args.filters)
    # compile(optimizer='adam', loss='mean_squared_error'); fit(x, y, epochs=80, batch_size=12)
    optimizer = optim.Adam(model.parameters(), rule="keras")
    history = fit(model, losses.mse_loss, optimizer, x_train, y_train, args.epochs,
                  args.batch_size, validation_data=(x_val, y_val), seed=args.seed)
    denoised = predict(model, x_val, batch_size=args.batch_size)   # (held_out, 1, H, W)

    results = {
        "data": "make_documents", "train_pages": len(x_train), "held_out_pages": len(x_val),
        "page_size": list(x_train.shape[2:]), "filters": list(args.filters),
        "denoiser": dict(history, psnr_dirty=psnr(x_val, y_val),
                         psnr_denoised=psnr(denoised, y_val)),
    }
    print(f"held-out PSNR {results['denoiser']['psnr_dirty']:.2f} dB dirty -> "
          f"{results['denoiser']['psnr_denoised']:.2f} dB denoised")
    n = min(SHOWN_PAGES, len(x_val))
    pictures = {
        "pages.png": labelled_grid(np.concatenate([x_val[:n], denoised[:n], y_val[:n]]), nrow=n,
                                   row_labels=["dirty", "denoised", "clean"],
                                   col_labels=[f"held-out {k + 1}" for k in range(n)]),
    }
    return write_results(args.out, results, pictures)


if __name__ == "__main__":
    main()
