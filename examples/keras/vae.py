"""Keras' "Variational AutoEncoder" (fchollet, keras.io): a convolutional VAE with a 2-d code.

Ported layer by layer from keras.io/examples/generative/vae; on Fashion-MNIST by default, where
the Keras example uses MNIST's digits.

    python examples/keras/vae.py                     # Fashion-MNIST, 2 epochs
    python examples/keras/vae.py --data mnist        # the digits the Keras example trains on
    python examples/keras/vae.py --quick --data synthetic   # a smoke test, no data on disk

Encoder: Conv2D 3x3 32 then 64, stride 2, 'same', ReLU (28 -> 14 -> 7), Flatten, Dense(16, ReLU),
then two Dense(2) heads z_mean and z_log_var, and the Sampling layer z = z_mean +
exp(0.5 * z_log_var) * eps, eps ~ N(0, 1) (seeded). Decoder: Dense(7 * 7 * 64, ReLU), Reshape,
Conv2DTranspose 3x3 64 then 32, stride 2, 'same', ReLU (7 -> 14 -> 28), and a sigmoid
Conv2DTranspose 3x3 to one channel (here: its logits; decode applies the sigmoid). 69,076 + 65,089 parameters, as in Keras' model summaries;
Glorot-uniform weights and zero biases, as Keras initializes them.

Loss, as the Keras example's train_step computes it: reconstruction = the batch mean of the
binary cross-entropy summed over the 784 pixels (computed, as Keras on TensorFlow computes it
after a sigmoid, from the sigmoid's logits in the stable form); KL = the batch mean of
-0.5 * sum_j (1 + z_log_var_j - z_mean_j^2 - exp(z_log_var_j)); total = reconstruction + KL;
Keras' Adam. Keras' example overrides Model.train_step with a GradientTape; here train_step is
the same lines with backward() and step(), in a loop written out as Keras' fit runs it.

Keras' example fits all 70,000 images (train and test together, epochs=30, batch_size=128) and
reports training numbers only; here a fifth of the images is held out, and the same three numbers
are measured on it after every epoch (z sampled as in training: one draw per image). Default 2
epochs instead of 30: an epoch of Fashion-MNIST's 70,000 images (56,000 trained on, 14,000 held
out) takes about 5.5 minutes on 2 CPU cores (47 s measured for MNIST's 10,000 test images).
Expect kl_loss near 0 at first: in a VAE's first few hundred steps the decoder ignores z and the
KL term falls to about 0, then grows as the decoder starts to use z (on MNIST, still about 0.1
after 250 steps); 2 epochs are 876 steps, Keras' setting --epochs 30 is 13,140.

Writes results.json (total, reconstruction and KL per epoch, training and held-out) and, as the
example draws them, latent_space.png (z_mean of the held-out images coloured by class) and
manifold.png (the decoder's images for z on a 30 x 30 grid over [-1, 1]^2, Keras' scale=1.0).
"""

import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # keras_port.py beside us

import aecore as ae  # noqa: E402
import aecore.functional as F  # noqa: E402
from aecore import losses, nn, optim  # noqa: E402
from aecore import random as ae_random  # noqa: E402
from aecore.io.png import read_png  # noqa: E402
from aecore.tensor import no_grad  # noqa: E402
from aecore.viz import PALETTE, Canvas, labelled_grid, plot_codes, text_width  # noqa: E402
from keras_port import command_line, finish_arguments, load_images, predict, write_results  # noqa: E402

LATENT_DIM = 2
METRICS = ("loss", "reconstruction_loss", "kl_loss")   # the names Keras' fit prints
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def sample_z(z_mean, z_log_var):
    """Keras' Sampling layer: z = z_mean + exp(0.5 * z_log_var) * eps, eps ~ N(0, 1) drawn from
    aecore.random (ae.manual_seed repeats it). z_log_var is log sigma^2, as the KL term reads it."""
    eps = ae.tensor(ae_random.randn(z_mean.shape, z_mean.dtype, like=z_mean.data),
                    device=z_mean.device)                              # (N, LATENT_DIM)
    return z_mean + (z_log_var * 0.5).exp() * eps


class VAE(nn.Module):
    """The Keras example's encoder and decoder, NCHW: (N, 1, 28, 28) -> z (N, 2) -> (N, 1, 28, 28).
    Keras builds them as two functional Models inside a VAE Model; here they are one Module."""

    def __init__(self, latent_dim=LATENT_DIM):
        super().__init__()
        # Keras' layers (activation="relu", padding="same" unless said) and the sizes they make
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding="same"), nn.ReLU(),   # Conv2D(32, 3, strides=2): 14
            nn.Conv2d(32, 64, 3, stride=2, padding="same"), nn.ReLU(),  # Conv2D(64, 3, strides=2): (64, 7, 7)
            nn.Flatten(),                                  # Flatten(): 3136 (NCHW order; Keras' is 7, 7, 64)
            nn.Linear(64 * 7 * 7, 16), nn.ReLU(),          # Dense(16)
        )
        self.z_mean = nn.Linear(16, latent_dim)            # Dense(latent_dim, name="z_mean"), no activation
        self.z_log_var = nn.Linear(16, latent_dim)         # Dense(latent_dim, name="z_log_var")
        self.sampling = nn.Lambda(sample_z, name="Sampling")   # Sampling()([z_mean, z_log_var])
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 7 * 7 * 64), nn.ReLU(),  # Dense(7 * 7 * 64)
            nn.Reshape(64, 7, 7),                          # Reshape((7, 7, 64)): NCHW puts channels first
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding="same"), nn.ReLU(),  # Conv2DTranspose(64, 3, strides=2): 14
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding="same"), nn.ReLU(),  # Conv2DTranspose(32, 3, strides=2): 28
            nn.ConvTranspose2d(32, 1, 3, padding="same"),  # Conv2DTranspose(1, 3, "sigmoid"): logits
        )
        nn.init.keras_defaults_(self)                      # glorot_uniform kernels, zero biases

    def encode(self, x):
        """x (N, 1, 28, 28) -> (z_mean, z_log_var, z), each (N, latent_dim): Keras' encoder."""
        features = self.encoder(x)                         # (N, 16)
        z_mean, z_log_var = self.z_mean(features), self.z_log_var(features)
        return z_mean, z_log_var, self.sampling(z_mean, z_log_var)

    def decode(self, z):
        """z (N, latent_dim) -> images (N, 1, 28, 28) in (0, 1): Keras' decoder, its sigmoid."""
        return F.sigmoid(self.decoder(z))

    def forward(self, x):
        """-> (logits (N, 1, 28, 28) of the reconstruction, z_mean, z_log_var): what the loss
        needs."""
        z_mean, z_log_var, z = self.encode(x)
        return self.decoder(z), z_mean, z_log_var


def vae_losses(images, logits, z_mean, z_log_var):
    """The three numbers of the Keras example's train_step -> (total, reconstruction, kl) Tensors.
    images (N, 1, 28, 28) are the targets, logits the decoder's (Keras' binary_crossentropy of
    its sigmoid output is computed from them); z_mean, z_log_var (N, latent_dim)."""
    per_pixel = F.binary_cross_entropy_with_logits(logits, ae.tensor(images, dtype=logits.dtype),
                                                   reduction="none")
    # reconstruction_loss = reduce_mean(reduce_sum(binary_crossentropy(data, reconstruction), axis=(1, 2)))
    reconstruction_loss = per_pixel.sum(axis=(1, 2, 3)).mean()   # (N, 1, 28, 28) -> (N,) -> ()
    # kl_loss = reduce_mean(reduce_sum(-0.5 * (1 + z_log_var - square(z_mean) - exp(z_log_var)), axis=1))
    kl_loss = losses.gaussian_kl(z_mean, z_log_var, reduction="mean")
    return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss


def train_step(vae, optimizer, images):
    """One batch of Keras' VAE.train_step: the losses, their gradients, one Adam step."""
    total, reconstruction_loss, kl_loss = vae_losses(images, *vae(ae.tensor(images)))
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    return total.item(), reconstruction_loss.item(), kl_loss.item()


def test_step(vae, images):
    """The same three numbers on held-out images, with no graph."""
    with no_grad():
        return tuple(t.item() for t in vae_losses(images, *vae(ae.tensor(images))))


def epoch_means(step, x, order, batch_size):
    """step(batch) -> (total, reconstruction, kl) on the batches of x taken in `order`;
    -> {METRICS name: mean over the images}."""
    sums = np.zeros(len(METRICS))
    for start in range(0, len(order), batch_size):
        batch = x[order[start:start + batch_size]]
        sums += np.asarray(step(batch)) * len(batch)
    return dict(zip(METRICS, (sums / len(order)).tolist()))


def fit(vae, optimizer, x, x_val, epochs, batch_size, seed=0):
    """vae.fit(x, epochs, batch_size) (shuffle=True), the held-out numbers after every epoch.
    -> Keras' History.history: loss, reconstruction_loss, kl_loss and their val_ twins."""
    shuffler = np.random.default_rng(seed)
    history = {name: [] for prefix in ("", "val_") for name in (prefix + m for m in METRICS)}
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        vae.train()
        trained = epoch_means(lambda batch: train_step(vae, optimizer, batch), x,
                              shuffler.permutation(len(x)), batch_size)
        vae.eval()
        held_out = epoch_means(lambda batch: test_step(vae, batch), x_val, np.arange(len(x_val)),
                               batch_size)
        for name in METRICS:
            history[name].append(trained[name])
            history["val_" + name].append(held_out[name])
        print(f"epoch {epoch}/{epochs}: " + "  ".join(
            f"{name} {values[-1]:.2f}" for name, values in history.items())
              + f"  ({time.perf_counter() - started:.1f} s)")
    vae.train()
    return history


def manifold(vae, n, scale=1.0):
    """Keras' plot_latent_space: the decoder's images for z on an n x n grid over
    [-scale, scale]^2, z1 growing left to right, z2 bottom to top -> a labelled picture."""
    grid_x = np.linspace(-scale, scale, n)
    grid_y = np.linspace(-scale, scale, n)[::-1]
    z = np.stack(np.meshgrid(grid_x, grid_y), axis=-1).reshape(-1, 2)   # row i, column j: (x_j, y_i)
    decoded = predict(vae.decoder, z.astype(np.float32), sigmoid=True)    # (n * n, 1, 28, 28)
    return labelled_grid(decoded, nrow=n, scale=2, col_labels=[f"{v:.2f}" for v in grid_x],
                         row_labels=[f"{v:.2f}" for v in grid_y],
                         title="decoded z = (z1, z2): z1 across, z2 up")


def class_names(dataset):
    """The names of the classes, label k -> names[k]; None where the labels are the names
    (digits)."""
    if dataset.name == "fashion-mnist":
        return FASHION_MNIST_CLASSES
    return dataset.classes


def latent_space(z_mean, labels, names=None):
    """Keras' plot_label_clusters: z_mean (N, 2) as points coloured by label (plot_codes), with a
    key of the class names to the right when the labels are not the names themselves."""
    with tempfile.TemporaryDirectory() as folder:     # plot_codes draws into a file
        path = os.path.join(folder, "latent_space.png")
        plot_codes(z_mean, labels, path)
        picture = read_png(path).astype(np.float32) / 255.0
    picture = np.stack([picture] * 3, axis=-1) if picture.ndim == 2 else picture[..., :3]
    if names is None or labels is None:
        return picture
    rows = [(k, f"{k} {names[k]}") for k in np.unique(labels)]
    key = Canvas(40 + max(text_width(text) for _, text in rows), picture.shape[0])
    for row, (k, text) in enumerate(rows):
        y = 40 + row * 16
        key.rect(4, y, 14, y + 9, PALETTE[int(k) % 10])
        key.text(20, y, text)
    return np.concatenate([picture, key.pixels], axis=1)


def main(argv=None):
    parser = command_line(__doc__.splitlines()[0], data="fashion-mnist", epochs=2, batch_size=128)
    args = finish_arguments(parser, argv, "vae")
    train_set, held_out = load_images(args)
    x_train, x_val = train_set.images, held_out.images

    ae.manual_seed(args.seed)
    vae = VAE()
    optimizer = optim.Adam(vae.parameters(), rule="keras")   # vae.compile(optimizer=keras.optimizers.Adam())
    history = fit(vae, optimizer, x_train, x_val, args.epochs, args.batch_size, seed=args.seed)

    z_mean = predict(nn.Sequential(vae.encoder, vae.z_mean), x_val)   # vae.encoder.predict(data)[0]
    results = {"data": train_set.name, "train_images": len(x_train),
               "held_out_images": len(x_val), "latent_dim": LATENT_DIM, "history": history}
    pictures = {"latent_space.png": latent_space(z_mean, held_out.labels, class_names(train_set)),
                "manifold.png": manifold(vae, n=8 if args.quick else 30)}
    return write_results(args.out, results, pictures)


if __name__ == "__main__":
    main()
