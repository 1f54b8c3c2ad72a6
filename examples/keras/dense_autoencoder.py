"""The deep dense autoencoder of Keras' "Building Autoencoders in Keras", 784-64-32-16-32-64-784,
ported layer by layer.

    python examples/keras/dense_autoencoder.py                    # MNIST, 100 epochs of 256
    python examples/keras/dense_autoencoder.py --quick            # a smoke test
    python examples/keras/dense_autoencoder.py --data synthetic   # no MNIST on disk
    python examples/keras/dense_autoencoder.py --loss mse --output linear

The images are flattened to rows of 784 pixels, as the tutorial's x_train.reshape does. Encoder:
Dense 64, 32, 16 with ReLU (the code is 16 numbers per image); decoder: Dense 32, 64 with ReLU
and Dense 784 with a sigmoid. Loss: Keras' binary_crossentropy of that sigmoid, which Keras (on
TensorFlow) computes from the sigmoid's logits in the stable form: so the port ends at the last
Dense's pre-activation output, and the sigmoid is applied by the loss and by predict.
Optimizer: Keras' Adam; weights Glorot-uniform, biases zero, as Keras initializes them.
The blog's settings, 100 epochs in batches of 256, are kept: one epoch of 8,000 MNIST images
took 0.2 s on 2 CPU cores, so the full set's 56,000 take roughly 1.5 s an epoch.

--loss mse is TensorFlow's "Intro to autoencoders" loss (losses.MeanSquaredError()), taken of
the sigmoid's output; with --output linear the last Dense has no activation, so the
reconstructions are the pre-activation outputs themselves, not bounded to [0, 1]. Binary
cross-entropy needs probabilities, hence the sigmoid output.
Writes results.json (the losses per epoch, the held-out PSNR) and a labelled picture.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # keras_port.py beside us

import aecore as ae  # noqa: E402
import aecore.functional as F  # noqa: E402
from aecore import losses, nn, optim  # noqa: E402
from aecore.viz import labelled_grid  # noqa: E402
from keras_port import (binary_crossentropy, command_line, finish_arguments, fit,  # noqa: E402
                        load_images, predict, psnr, shape_trace, write_results)

LOSSES = ("binary_crossentropy", "mse")   # Keras' names: loss='binary_crossentropy', loss='mse'
OUTPUTS = ("sigmoid", "linear")           # the last Dense's activation


def dense_autoencoder(pixels):
    """The Keras model on rows of pixels: (N, 784) -> code (N, 16) -> (N, 784), the last Dense's
    pre-activation output (the sigmoid's logits, or the images themselves for a linear output)."""
    model = nn.Sequential(
        # encoder
        nn.Linear(pixels, 64), nn.ReLU(),   # Dense(64, activation='relu')   784 -> 64
        nn.Linear(64, 32), nn.ReLU(),       # Dense(32, activation='relu')    64 -> 32
        nn.Linear(32, 16), nn.ReLU(),       # Dense(16, activation='relu')    32 -> 16: the code
        # decoder
        nn.Linear(16, 32), nn.ReLU(),       # Dense(32, activation='relu')    16 -> 32
        nn.Linear(32, 64), nn.ReLU(),       # Dense(64, activation='relu')    32 -> 64
        nn.Linear(64, pixels),              # Dense(784, activation='sigmoid' | None)  64 -> 784
    )                                       # before the activation: loss_function applies it
    return nn.init.keras_defaults_(model)   # glorot_uniform kernels, zero biases


def loss_function(loss, output):
    """compile(loss=...) as a fit loss_fn(pre-activation output, target), the output activation
    included: Keras' binary_crossentropy of a sigmoid from its logits, or the mean squared error
    of the sigmoid's output or of the linear output itself."""
    if loss == "binary_crossentropy":
        return binary_crossentropy
    if output == "sigmoid":
        return lambda logits, target: losses.mse_loss(F.sigmoid(logits), target)
    return losses.mse_loss


def main(argv=None):
    parser = command_line(__doc__.splitlines()[0], data="mnist", epochs=100, batch_size=256)
    parser.add_argument("--loss", choices=LOSSES, default="binary_crossentropy",
                        help="Keras' loss name (default binary_crossentropy)")
    parser.add_argument("--output", choices=OUTPUTS, default="sigmoid",
                        help="the last layer's activation (default sigmoid)")
    args = finish_arguments(parser, argv, "dense_autoencoder")
    if args.loss == "binary_crossentropy" and args.output != "sigmoid":
        parser.error(f"--loss binary_crossentropy needs probabilities (--output sigmoid), "
                     f"got --output {args.output}")
    train_set, held_out = load_images(args)
    image_shape = train_set.images.shape[1:]                      # (1, 28, 28)
    x_train = train_set.images.reshape(len(train_set), -1)        # (N, 784), the tutorial's reshape
    x_val = held_out.images.reshape(len(held_out), -1)

    ae.manual_seed(args.seed)
    model = dense_autoencoder(x_train.shape[1])
    print(f"shapes: {shape_trace(model, x_train[:1])}")
    optimizer = optim.Adam(model.parameters(), rule="keras")     # keras.optimizers.Adam()
    history = fit(model, loss_function(args.loss, args.output), optimizer, x_train, x_train,
                  args.epochs, args.batch_size, validation_data=(x_val, x_val), seed=args.seed)
    reconstructed = predict(model, x_val, sigmoid=args.output == "sigmoid")   # (N_val, 784)

    results = {
        "data": train_set.name, "train_images": len(x_train), "held_out_images": len(x_val),
        "loss_function": args.loss, "output_activation": args.output,
        "autoencoder": dict(history, psnr=psnr(reconstructed, x_val)),
    }
    print(f"held-out PSNR {results['autoencoder']['psnr']:.2f} dB")
    n = min(8, len(x_val))
    shown = np.concatenate([x_val[:n], reconstructed[:n]]).reshape(2 * n, *image_shape)
    pictures = {   # write_png clips a linear output's values to [0, 1]
        "reconstructions.png": labelled_grid(shown, nrow=n, row_labels=["input", "reconstructed"],
                                             title=f"{args.loss}, {args.output} output"),
    }
    return write_results(args.out, results, pictures)


if __name__ == "__main__":
    main()
