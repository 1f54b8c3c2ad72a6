"""The classic convolutional autoencoder of Keras' "Building Autoencoders in Keras", trained as a
plain autoencoder and as a denoiser, ported layer by layer.

    python examples/keras/conv_autoencoder.py                    # MNIST, 10 epochs each
    python examples/keras/conv_autoencoder.py --quick            # a smoke test
    python examples/keras/conv_autoencoder.py --data synthetic   # no MNIST on disk

Encoder: Conv2D 3x3 32, 32, 16 'same' with ReLU, each followed by MaxPooling2D 2x2 'same'
(28 -> 14 -> 7 -> 4: 'same' pooling keeps the odd 7's last row). Decoder: a nearest resize back
up before each conv (4 -> 7 -> 14 -> 28), and a sigmoid Conv2D 3x3 to one channel. Loss: Keras'
binary_crossentropy of that sigmoid, which Keras (on TensorFlow) computes from the sigmoid's
logits in the stable form: so the port ends at the logits and uses the logits form
(keras_port.binary_crossentropy). Optimizer: Keras' Adam; weights Glorot-uniform, biases zero,
as Keras initializes them.

The denoiser is the same network fed x_noisy = clip(x + 0.5 * N(0, 1), 0, 1) and asked for x.
Writes results.json (the losses per epoch, PSNR before and after) and two labelled pictures.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # keras_port.py beside us

import aecore as ae  # noqa: E402
from aecore import nn, optim  # noqa: E402
from aecore.viz import labelled_grid  # noqa: E402
from keras_port import (binary_crossentropy, command_line, finish_arguments, fit,  # noqa: E402
                        load_images, predict, psnr, write_results)


def conv_autoencoder():
    """The Keras model, NCHW: input (N, 1, 28, 28) -> code (N, 16, 4, 4) -> logits (N, 1, 28, 28)."""
    model = nn.Sequential(
        # encoder
        nn.Conv2d(1, 32, 3, padding="same"), nn.ReLU(),    # Conv2D(32, (3, 3), activation='relu', padding='same')
        nn.MaxPool2d(2, padding="same"),                   # MaxPooling2D((2, 2), padding='same')  -> 14
        nn.Conv2d(32, 32, 3, padding="same"), nn.ReLU(),   # Conv2D(32, (3, 3), ...)
        nn.MaxPool2d(2, padding="same"),                   # -> 7
        nn.Conv2d(32, 16, 3, padding="same"), nn.ReLU(),   # Conv2D(16, (3, 3), ...)
        nn.MaxPool2d(2, padding="same"),                   # -> 4: the code, 16 x 4 x 4
        # decoder
        nn.Conv2d(16, 16, 3, padding="same"), nn.ReLU(),   # Conv2D(16, (3, 3), ...)
        nn.Upsample(size=(7, 7), mode="nearest-exact"),    # tf.image.resize(x, (7, 7), 'nearest')
        nn.Conv2d(16, 32, 3, padding="same"), nn.ReLU(),   # Conv2D(32, (3, 3), ...)
        nn.Upsample(scale_factor=2),                       # UpSampling2D((2, 2))  -> 14
        nn.Conv2d(32, 32, 3, padding="same"), nn.ReLU(),   # Conv2D(32, (3, 3), ...)
        nn.Upsample(scale_factor=2),                       # UpSampling2D((2, 2))  -> 28
        nn.Conv2d(32, 1, 3, padding="same"),               # Conv2D(1, (3, 3), activation='sigmoid', ...):
    )                                                      # logits; the loss and predict apply the sigmoid
    return nn.init.keras_defaults_(model)                  # glorot_uniform kernels, zero biases


def add_noise(images, rng, noise_factor=0.5):
    """x + noise_factor * N(0, 1), clipped to [0, 1], as the tutorial's np.clip does."""
    noisy = images + noise_factor * rng.standard_normal(images.shape).astype(images.dtype)
    return np.clip(noisy, 0.0, 1.0)


def train(name, x_train, x_val, args, noisy=None, noisy_val=None):
    """One Keras `compile(optimizer='adam', loss='binary_crossentropy')` + `fit`; a denoiser
    gets noisy(batch) for each training batch and the fixed noisy_val to validate on."""
    print(f"-- {name}")
    ae.manual_seed(args.seed)
    model = conv_autoencoder()
    optimizer = optim.Adam(model.parameters(), rule="keras")      # keras.optimizers.Adam()
    history = fit(model, binary_crossentropy, optimizer, x_train, x_train, args.epochs,
                  args.batch_size, seed=args.seed, inputs=noisy,
                  validation_data=(x_val if noisy_val is None else noisy_val, x_val))
    return model, history


def main(argv=None):
    parser = command_line(__doc__.splitlines()[0], data="mnist", epochs=10, batch_size=128)
    args = finish_arguments(parser, argv, "conv_autoencoder")
    train_set, held_out = load_images(args)
    x_train, x_val = train_set.images, held_out.images
    n = min(8, len(x_val))

    model, plain = train("autoencoder", x_train, x_val, args)
    reconstructed = predict(model, x_val, sigmoid=True)

    noise = np.random.default_rng(args.seed + 1)               # fresh noise for every batch
    noisy_val = add_noise(x_val, np.random.default_rng(args.seed + 2))   # one fixed draw
    denoiser, denoising = train("denoiser", x_train, x_val, args,
                                noisy=lambda batch: add_noise(batch, noise), noisy_val=noisy_val)
    denoised = predict(denoiser, noisy_val, sigmoid=True)

    results = {
        "data": train_set.name, "train_images": len(x_train), "held_out_images": len(x_val),
        "autoencoder": dict(plain, psnr=psnr(reconstructed, x_val)),
        "denoiser": dict(denoising, psnr_noisy=psnr(noisy_val, x_val),
                         psnr_denoised=psnr(denoised, x_val)),
    }
    print(f"autoencoder: held-out PSNR {results['autoencoder']['psnr']:.2f} dB")
    print(f"denoiser: PSNR {results['denoiser']['psnr_noisy']:.2f} dB noisy -> "
          f"{results['denoiser']['psnr_denoised']:.2f} dB denoised")
    pictures = {
        "reconstructions.png": labelled_grid(np.concatenate([x_val[:n], reconstructed[:n]]), nrow=n,
                                             row_labels=["input", "reconstructed"]),
        "denoising.png": labelled_grid(np.concatenate([noisy_val[:n], denoised[:n], x_val[:n]]),
                                       nrow=n, row_labels=["noisy input", "denoised", "clean"]),
    }
    return write_results(args.out, results, pictures)


if __name__ == "__main__":
    main()
