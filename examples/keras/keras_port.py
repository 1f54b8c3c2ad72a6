"""What the Keras tutorials in this folder share: their command line, their data, Keras'
`model.fit` written out the PyTorch way, and how they write their numbers and pictures.

Each tutorial builds its model from aecore.nn layers as the Keras original does (the original's
layers named in comments beside them) and trains it with `fit`, which is

    model.fit(x, y, epochs=E, batch_size=B, shuffle=True, validation_data=(x_val, y_val))

as a loop: shuffle, take a batch, loss, zero_grad, backward, step; the held-out loss after
every epoch. The mapping from Keras to aecore is in the README, "Coming from Keras".
"""

import argparse
import json
import os
import time

import numpy as np

import aecore as ae
import aecore.functional as F
from aecore.data import load_dataset, split_dataset
from aecore.data.dataset import DatasetNotFoundError
from aecore.io.png import write_png
from aecore.tensor import no_grad


QUICK = {"limit": 256, "epochs": 1, "batch_size": 64}   # --quick, where not given


def command_line(description, data="mnist", epochs=10, batch_size=128, limit=None):
    """The flags every tutorial takes; its own defaults for data, epochs, batch size."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default=data,
                        help=f"a data set name (mnist, fashion-mnist, synthetic) or path "
                             f"(default {data}); nothing is downloaded")
    parser.add_argument("--data-root", help="a directory searched first for named data sets")
    # None until parsed: finish_arguments tells a value given from one left to the default
    parser.add_argument("--limit", type=int, help="use the first N images (default: all)")
    parser.add_argument("--epochs", type=int, help=f"default {epochs}")
    parser.add_argument("--batch-size", type=int, help=f"default {batch_size}")
    parser.tutorial_defaults = {"limit": limit, "epochs": epochs, "batch_size": batch_size}
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="where the numbers (results.json) and pictures go "
                             "(default: examples/keras/output/<tutorial>)")
    parser.add_argument("--quick", action="store_true",
                        help="256 images, 1 epoch, batches of 64 unless given: a smoke test")
    return parser


def finish_arguments(parser, argv, tutorial):
    """Parse argv; a flag not given takes --quick's value or the tutorial's default; --out
    defaults to output/<tutorial> beside us."""
    args = parser.parse_args(argv)
    for name, default in parser.tutorial_defaults.items():
        value = getattr(args, name)
        if value is None:
            setattr(args, name, QUICK[name] if args.quick else default)
        elif value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if args.out is None:
        args.out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output", tutorial)
    return args


def load_images(args, val_fraction=0.2):
    """(train, held_out) Datasets of the chosen set: images (N, C, H, W) in [0, 1], labels.

    Keras' tutorials call `mnist.load_data()`, which downloads; here the set must be on disk
    (see the README's Data section), and a missing one ends the run in one line."""
    try:
        dataset = load_dataset(args.data, root=args.data_root, n=args.limit, seed=args.seed)
    except DatasetNotFoundError as e:
        found_not = str(e).splitlines()[0].split(". Looked in")[0]
        raise SystemExit(f"error: {found_not}; nothing is downloaded: put its files in "
                         f"$AECORE_DATA or pass --data PATH (aecore.data.load_dataset's "
                         f"docstring says where it looks), or --data synthetic") from None
    train, held_out = split_dataset(dataset, val_fraction=val_fraction, seed=args.seed)
    print(f"data: {dataset.name}, {len(train)} training and {len(held_out)} held-out images "
          f"{train.images.shape[1:]}")
    return train, held_out


def fit(model, loss_fn, optimizer, x, y, epochs, batch_size, validation_data, seed=0,
        inputs=None):
    """Keras' fit, written out. x, y: (N, ...) arrays; loss_fn(prediction, target) -> scalar.

    inputs(batch_x) -> what the model sees (the denoiser's noise, drawn per batch); None: x.
    Returns Keras' History.history: {"loss": [...], "val_loss": [...]} per epoch."""
    x_val, y_val = validation_data
    shuffler = np.random.default_rng(seed)
    history = {"loss": [], "val_loss": []}
    for epoch in range(1, epochs + 1):
        started, total, seen = time.perf_counter(), 0.0, 0
        model.train()
        order = shuffler.permutation(len(x))                 # shuffle=True
        for start in range(0, len(x), batch_size):
            indices = order[start:start + batch_size]
            batch_x, batch_y = x[indices], y[indices]
            prediction = model(ae.tensor(batch_x if inputs is None else inputs(batch_x)))
            loss = loss_fn(prediction, ae.tensor(batch_y))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(indices), seen + len(indices)
        history["loss"].append(total / seen)
        history["val_loss"].append(evaluate(model, loss_fn, x_val, y_val, batch_size))
        print(f"epoch {epoch}/{epochs}: loss {history['loss'][-1]:.4f}  val_loss "
              f"{history['val_loss'][-1]:.4f}  ({time.perf_counter() - started:.1f} s)")
    return history


def binary_crossentropy(logits, target):
    """Keras' loss="binary_crossentropy" on a model whose last layer has activation="sigmoid",
    computed as Keras computes it on TensorFlow: from that sigmoid's logits, in the stable form
    (keras/src/backend/tensorflow/nn.py takes the logits of a sigmoid output; the tests check it
    against TensorFlow). So a ported model ends at the logits, without nn.Sigmoid, and
    predict(..., sigmoid=True) gives its images. (Keras' clipped form, for probabilities from
    anywhere else, is aecore.losses.keras_binary_crossentropy.)"""
    return F.binary_cross_entropy_with_logits(logits, target)


def predict(model, x, batch_size=256, sigmoid=False):
    """model(x) in batches with no graph, as a NumPy array (Keras' model.predict); sigmoid=True
    for a model that ends at the logits of Keras' sigmoid output layer."""
    model.eval()
    with no_grad():
        parts = []
        for i in range(0, len(x), batch_size):
            y = model(ae.tensor(x[i:i + batch_size]))
            parts.append((F.sigmoid(y) if sigmoid else y).numpy())
    model.train()
    return np.concatenate(parts)


def evaluate(model, loss_fn, x, y, batch_size=256):
    """The mean of loss_fn over x in batches, weighted by batch size (Keras' model.evaluate)."""
    model.eval()
    total = 0.0
    with no_grad():
        for i in range(0, len(x), batch_size):
            total += loss_fn(model(ae.tensor(x[i:i + batch_size])),
                             ae.tensor(y[i:i + batch_size])).item() * len(x[i:i + batch_size])
    model.train()
    return total / len(x)


def psnr(a, b):
    """Mean peak signal-to-noise ratio in dB of images in [0, 1], 10 log10(1 / MSE)."""
    mse = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def write_results(out, results, pictures):
    """results.json (the numbers) and the PNGs {file name: picture array} into out; -> results
    with the written paths added under "pictures"."""
    os.makedirs(out, exist_ok=True)
    written = {}
    for name, picture in pictures.items():
        path = os.path.join(out, name)
        write_png(path, picture)
        written[name] = path
    results = dict(results, pictures=written)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {os.path.join(out, 'results.json')} and {', '.join(written)} in {out}")
    return results


# ---------------------------------------------------------------------------------------------
# shape_trace: used by dense_autoencoder.py and strided_conv_autoencoder.py
# ---------------------------------------------------------------------------------------------

def shape_trace(model, batch):
    """The shape of one example after each layer of a Sequential that changes it, on one line,
    as Keras' model.summary() lists output shapes: '1x28x28 -> 16x14x14 -> ...' (C x H x W)."""
    shapes = [tuple(batch.shape[1:])]
    x = ae.tensor(batch)
    with no_grad():
        for layer in model:
            x = layer(x)
            if tuple(x.shape[1:]) != shapes[-1]:
                shapes.append(tuple(x.shape[1:]))
    return " -> ".join("x".join(map(str, shape)) for shape in shapes)
