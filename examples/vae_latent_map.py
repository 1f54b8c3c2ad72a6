"""A VAE with a 2-D latent space, and a map of it: what the decoder draws at each point.

    python examples/vae_latent_map.py                   # 4000 synthetic digits, 8 epochs
    python examples/vae_latent_map.py --quick --out /tmp/vae
    python examples/vae_latent_map.py --data mnist --images 20000 --epochs 10

The encoder maps an image to a Gaussian q(z|x) = N(mu, diag(exp(logvar))) over a 2-D code z; the
decoder maps z back to pixel logits. Training minimises the negative ELBO per image,

    BCE(decode(z), x) summed over the pixels  +  KL(q(z|x) || N(0, I)),
    z = mu + exp(0.5 * logvar) * eps,  eps ~ N(0, I)     (the reparameterisation trick)

The KL term pulls every code towards the standard normal, so the codes of the training images
fill a round region around 0 without holes, and any point there decodes to something plausible.
With only 2 latent numbers we can look at the whole space at once:
- latent_map.png: decode(z) on a regular grid of z over [-2.5, 2.5]^2 (the latent map; digits
  morph smoothly into each other as z moves);
- latent_scatter.png: the means mu of held-out images, coloured by their digit label
  (matplotlib when installed, else drawn with NumPy by aecore.viz).
"""

import argparse
import os
import time

import numpy as np

import aecore as ae
from aecore import optim
from aecore.data import DataLoader, load_dataset
from aecore.io.png import image_grid, write_png
from aecore.models import build_model
from aecore.viz import latent_scatter


def latent_map(model, steps=15, extent=2.5):
    """sigmoid(decode(z)) for z on a steps x steps grid; row 0 is the top (largest z_2)."""
    values = np.linspace(-extent, extent, steps, dtype=np.float32)
    z = np.array([[z1, z2] for z2 in values[::-1] for z1 in values], dtype=np.float32)
    with ae.no_grad():
        probabilities = model.decode(ae.tensor(z)).sigmoid()
    return probabilities.numpy()  # (steps * steps, C, H, W), row-major like the grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", help="synthetic, mnist, fashion-mnist or a path")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--grid", type=int, default=15, help="latent map: grid points per axis")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "output"))
    parser.add_argument("--quick", action="store_true", help="200 images, 1 epoch (a smoke test)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs, args.batch_size, args.grid = 200, 1, 50, 8

    ae.manual_seed(args.seed)
    train = load_dataset(args.data, split="train", n=args.images, seed=args.seed)
    test = load_dataset(args.data, split="test", n=max(100, args.images // 5), seed=args.seed)
    print(f"data: {args.data}, {len(train.images)} training and {len(test.images)} held-out images")

    # a dense VAE, 784 -> 256 -> (mu, logvar) in 2-D -> 256 -> 784
    model = build_model("vae", encoder="dense", hidden=(256,), latent_dim=2)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train.images, train.labels, batch_size=args.batch_size, shuffle=True,
                        seed=args.seed)
    for epoch in range(1, args.epochs + 1):
        started, sums, count = time.perf_counter(), {"nelbo": 0.0, "kl": 0.0}, 0
        for batch, _ in loader:
            loss, metrics = model.loss(batch)       # one sample of z per image
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for key in sums:
                sums[key] += metrics[key] * len(batch)
            count += len(batch)
        print(f"epoch {epoch}: -ELBO {sums['nelbo'] / count:7.2f} nats/image "
              f"(KL {sums['kl'] / count:5.2f})  ({time.perf_counter() - started:.1f} s)")

    model.eval()
    with ae.no_grad():
        mu, logvar = model.encode(test.images)
    mu, sigma = mu.numpy(), np.exp(0.5 * logvar.numpy())
    print(f"held-out codes: mean {np.round(mu.mean(axis=0), 2)}, std {np.round(mu.std(axis=0), 2)}, "
          f"typical posterior std {np.round(np.median(sigma, axis=0), 3)}")
    for digit in range(10):
        chosen = test.labels == digit
        if chosen.any():
            centre = mu[chosen].mean(axis=0)
            print(f"  digit {digit}: {chosen.sum():3d} images, mean code ({centre[0]:+.2f}, {centre[1]:+.2f})")

    os.makedirs(args.out, exist_ok=True)
    map_path = os.path.join(args.out, "latent_map.png")
    tiles = latent_map(model, args.grid)
    write_png(map_path, image_grid(tiles, nrow=args.grid, padding=1, pad_value=1.0))
    scatter_path = os.path.join(args.out, "latent_scatter.png")
    latent_scatter(model, test.images, test.labels, path=scatter_path)
    print(f"wrote {map_path} (decoded grid over z in [-2.5, 2.5]^2, z_1 left to right, "
          f"z_2 bottom to top)")
    print(f"wrote {scatter_path} (held-out codes mu, coloured by digit)")
    return {"latent_map": map_path, "latent_scatter": scatter_path,
            "nelbo": sums["nelbo"] / count}


if __name__ == "__main__":
    main()
