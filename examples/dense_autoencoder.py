"""Train the dense autoencoder 784-64-32-16-32-64-784 by hand: the whole training loop in one page.

    python examples/dense_autoencoder.py                  # the embedded synthetic digits
    python examples/dense_autoencoder.py --data mnist     # real MNIST, found via AECORE_DATA etc.
    python examples/dense_autoencoder.py --data ../shared/data/mnist

ReLU between layers, logits out, binary cross-entropy with logits, Adam 1e-3: the classic Keras
tutorial model. Prints the mean training loss per epoch and the held-out loss.
"""

import argparse
import time


import aecore as ae
import aecore.functional as F
from aecore import nn, optim
from aecore.data import DataLoader, load_dataset, train_val_split


def dense_autoencoder(sizes=(784, 64, 32, 16)):
    """Encoder sizes[0] -> ... -> sizes[-1], decoder mirrored; ReLU inside, logits out."""
    layers = []
    mirrored = list(sizes) + list(reversed(sizes[:-1]))
    for index, (n_in, n_out) in enumerate(zip(mirrored[:-1], mirrored[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if index < len(mirrored) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(nn.Flatten(), *layers, nn.Unflatten(1, (1, 28, 28)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", help="synthetic, mnist, fashion-mnist or a path")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    ae.manual_seed(args.seed)
    dataset = load_dataset(args.data)
    images = dataset.images[:args.limit] if args.limit else dataset.images  # (N, 1, 28, 28) in [0, 1]
    train_idx, val_idx = train_val_split(len(images), val_fraction=0.2, seed=args.seed)
    print(f"data: {dataset.name}, {len(train_idx)} training and {len(val_idx)} held-out images")

    model = dense_autoencoder()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(images[train_idx], batch_size=args.batch_size, shuffle=True, seed=args.seed)
    held_out = ae.tensor(images[val_idx])

    losses = []
    for epoch in range(1, args.epochs + 1):
        started, total, count = time.perf_counter(), 0.0, 0
        for batch, _ in loader:
            x = ae.tensor(batch)
            logits = model(x)
            loss = F.binary_cross_entropy_with_logits(logits, x)  # per-pixel BCE, mean
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(batch), count + len(batch)
        with ae.no_grad():
            val_loss = F.binary_cross_entropy_with_logits(model(held_out), held_out).item()
        losses.append(total / count)
        print(f"epoch {epoch}: train BCE {total / count:.4f}  held-out BCE {val_loss:.4f}  "
              f"({time.perf_counter() - started:.1f} s)")
    return losses


if __name__ == "__main__":
    main()
