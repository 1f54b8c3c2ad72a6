"""The strided convolutional autoencoder of TensorFlow's "Intro to autoencoders" (its denoiser's
layers), and the same network on images zero-padded to 32 x 32, both trained, ported layer by layer.

    python examples/keras/strided_conv_autoencoder.py                    # MNIST, 2 epochs of 32
    python examples/keras/strided_conv_autoencoder.py --quick            # a smoke test
    python examples/keras/strided_conv_autoencoder.py --data synthetic   # no MNIST on disk

Strides do the resizing here: Conv2D 3x3 'same' with strides=2 halves the image where
conv_autoencoder.py pools, and Conv2DTranspose 3x3 'same' with strides=2 doubles it where that one
upsamples (Keras' 'same' rule: output = input * stride). Encoder: 16 then 8 channels, 28 -> 14 ->
7; decoder: 8 then 16 channels, 7 -> 14 -> 28, and a sigmoid Conv2D 3x3 to one channel.

The variant pads 28 to 32 first (ZeroPadding2D(2)), runs the same layers (32 -> 16 -> 8 -> 16 ->
32) and crops back (Cropping2D(2)). 32 halves cleanly down to 1 where 28 stops at 7; a deeper
encoder on 28 would meet 7 -> 4, and a stride-2 'same' Conv2DTranspose can only double 4 to 8,
never back to 7: padding is the usual cure. Its code is 8 x 8 x 8 numbers against 8 x 7 x 7.

Both: Keras' binary_crossentropy of the sigmoid, which Keras (on TensorFlow) computes from the
sigmoid's logits in the stable form: so the ports end at the logits, and the loss and predict
apply the sigmoid. Keras' Adam; weights Glorot-uniform, biases zero. Keras' default batches of
32 are kept, but 2 epochs replace the TensorFlow tutorial's 10: one epoch of 8,000 MNIST images
took 42 s for the two models together on 2 CPU cores shared with other work, so at that pace an
epoch of the full set's 56,000 takes about 5 minutes (--epochs 10 for the original).
Writes results.json (the losses per epoch, the held-out PSNR of each) and a labelled picture.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # keras_port.py beside us

import aecore as ae  # noqa: E402
from aecore import nn, optim  # noqa: E402
from aecore.viz import labelled_grid  # noqa: E402
from keras_port import (binary_crossentropy, command_line, finish_arguments, fit,  # noqa: E402
                        load_images, predict, psnr, shape_trace, write_results)

HALVINGS = 2   # two stride-2 convs: the image sides must divide by 4


def strided_layers(channels):
    """The TensorFlow tutorial's layers, NCHW, up to the sigmoid's logits; shapes for a 28 x 28
    input (and, in brackets, padded to 32)."""
    return [
        # encoder
        # Conv2D(16, (3, 3), activation='relu', padding='same', strides=2)
        nn.Conv2d(channels, 16, 3, stride=2, padding="same"), nn.ReLU(),    # 1x28x28 -> 16x14x14 (32 -> 16)
        # Conv2D(8, (3, 3), activation='relu', padding='same', strides=2)
        nn.Conv2d(16, 8, 3, stride=2, padding="same"), nn.ReLU(),           # -> 8x7x7, the code (16 -> 8)
        # decoder
        # Conv2DTranspose(8, kernel_size=3, strides=2, activation='relu', padding='same')
        nn.ConvTranspose2d(8, 8, 3, stride=2, padding="same"), nn.ReLU(),   # -> 8x14x14 (8 -> 16)
        # Conv2DTranspose(16, kernel_size=3, strides=2, activation='relu', padding='same')
        nn.ConvTranspose2d(8, 16, 3, stride=2, padding="same"), nn.ReLU(),  # -> 16x28x28 (16 -> 32)
        # Conv2D(1, kernel_size=(3, 3), activation='sigmoid', padding='same')
        nn.Conv2d(16, channels, 3, padding="same"),                         # -> 1x28x28 logits (32)
    ]


def strided_autoencoder(channels=1):
    """(N, 1, 28, 28) -> code (N, 8, 7, 7) -> logits (N, 1, 28, 28)."""
    return nn.init.keras_defaults_(nn.Sequential(*strided_layers(channels)))


def padded_autoencoder(channels=1):
    """(N, 1, 28, 28) -> padded (N, 1, 32, 32) -> code (N, 8, 8, 8) -> logits (N, 1, 32, 32) ->
    cropped (N, 1, 28, 28)."""
    return nn.init.keras_defaults_(nn.Sequential(
        nn.ZeroPadding2D(2),                 # ZeroPadding2D(2)   1x28x28 -> 1x32x32
        *strided_layers(channels),           # the layers above   -> 1x32x32 logits
        nn.Cropping2D(2),                    # Cropping2D(2)      -> 1x28x28
    ))


MODELS = {"strided": strided_autoencoder, "padded_to_32": padded_autoencoder}


def main(argv=None):
    parser = command_line(__doc__.splitlines()[0], data="mnist", epochs=2, batch_size=32)
    args = finish_arguments(parser, argv, "strided_conv_autoencoder")
    train_set, held_out = load_images(args)
    x_train, x_val = train_set.images, held_out.images             # (N, 1, 28, 28)
    channels, height, width = x_train.shape[1:]
    if height % 2 ** HALVINGS or width % 2 ** HALVINGS:
        raise SystemExit(f"error: the strided models need image sides divisible by "
                         f"{2 ** HALVINGS}, got {height} x {width}")

    results = {"data": train_set.name, "train_images": len(x_train), "held_out_images": len(x_val)}
    reconstructions = {}
    for name, build in MODELS.items():   # compile(optimizer='adam', loss='binary_crossentropy')
        print(f"-- {name}")
        ae.manual_seed(args.seed)
        model = build(channels)
        shapes = shape_trace(model, x_train[:1])
        print(f"shapes: {shapes}")
        optimizer = optim.Adam(model.parameters(), rule="keras")    # keras.optimizers.Adam()
        history = fit(model, binary_crossentropy, optimizer, x_train, x_train, args.epochs,
                      args.batch_size, validation_data=(x_val, x_val), seed=args.seed)
        reconstructions[name] = predict(model, x_val, sigmoid=True)
        results[name] = dict(history, shapes=shapes, psnr=psnr(reconstructions[name], x_val))
        print(f"{name}: held-out PSNR {results[name]['psnr']:.2f} dB")

    n = min(8, len(x_val))
    shown = np.concatenate([x_val[:n]] + [images[:n] for images in reconstructions.values()])
    row_labels = ["input"] + [name.replace("_", " ") for name in MODELS]
    pictures = {"reconstructions.png": labelled_grid(shown, nrow=n, row_labels=row_labels)}
    return write_results(args.out, results, pictures)


if __name__ == "__main__":
    main()
