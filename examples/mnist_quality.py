"""Held-out quality of AE, CAE, DAE and VAE on real MNIST.

The data: the MNIST test set (10,000 images) that sits beside the repository in
../shared/data/mnist; the first 8,000 images train, the last 2,000 are held out. Each model
trains for 10 epochs with Adam (lr 1e-3, batch 128) from seed 0, with the models' default
architectures (the classic Keras-blog ones; printed below and saved in the JSON), and is then
evaluated on the held-out images:

    AE, CAE   per-pixel binary cross-entropy of the reconstruction (nats per pixel)
    DAE       per-pixel BCE of the reconstruction of the corrupted input against the CLEAN
              image (Gaussian noise, factor 0.5, clipped; the base is the classic CAE),
              plus PSNR of the noisy input and of the denoised output
    VAE       negative ELBO in nats per image (summed BCE + KL, one sample of z)

    python examples/mnist_quality.py              # the full run (tens of minutes on 2 cores)
    python examples/mnist_quality.py --epochs 1 --limit 500 --models ae vae   # a quick check
    python examples/mnist_quality.py --out runs/quality    # also keep each run directory

Results go to mnist_quality.json (or --json PATH): every number, the commands, the options,
parameter counts, training times, and the machine.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "mnist")

# What each family is trained as. Empty options = the model's defaults (aecore.models).
MODELS = {
    "ae": {},
    "cae": {},
    "dae": {"base": "cae", "noise": "gaussian", "noise_level": 0.5},
    "vae": {},
}
REPORTED = {"ae": "bce", "cae": "bce", "dae": "bce", "vae": "nelbo"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="folder with t10k-images-idx3-ubyte(.gz) (default ../shared/data/mnist)")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None,
                   help="train on the first N of the 8,000 training images and evaluate on "
                        "the first min(N, 2000) held-out ones (a quick check)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--out", default=None, help="keep each run directory under this folder")
    p.add_argument("--json", default="mnist_quality.json", help="where to write the results")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def load_split(data_dir, limit):
    from aecore.data import load_dataset
    ds = load_dataset(data_dir, split="test")
    if len(ds) < 10000:
        raise SystemExit(f"{data_dir}: expected the 10,000 MNIST test images, found {len(ds)}")
    train, held_out = ds.subset(np.arange(8000)), ds.subset(np.arange(8000, 10000))
    if limit is not None:
        train = train.subset(np.arange(min(limit, 8000)))
        held_out = held_out.subset(np.arange(min(limit, 2000)))
    return train, held_out


def run_one(kind, options, train, held_out, args):
    import aecore
    from aecore import models
    from aecore.train import Trainer

    aecore.manual_seed(args.seed)
    model = models.build_model(kind, input_shape=train.shape, **options)
    if args.device != "cpu":
        model.to(args.device)
    optimizer = aecore.optim.Adam(model.parameters(), lr=args.lr)
    config = {"model": kind, "model_options": options, "data": os.path.abspath(args.data),
              "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
              "seed": args.seed, "device": args.device, "val_fraction": 0.0, "limit": None,
              "pictures": False}
    out_dir = os.path.join(args.out, kind) if args.out else None
    trainer = Trainer(model, optimizer, (train, held_out), config, out_dir=out_dir,
                      quiet=args.quiet)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    model = trainer.model  # restore_best: the epoch with the lowest held-out loss
    metrics = models.evaluate(model, held_out.images, batch_size=256)
    if out_dir:
        from aecore import viz
        viz.write_run_pictures(model, out_dir, held_out.images, held_out.labels, trainer.history)
    return {
        "kind": kind, "options": options, "model_config": model.config,
        "parameters": int(model.num_parameters()),
        "epochs": trainer.epoch, "best_epoch": trainer.best_epoch,
        "train_seconds": round(seconds, 1),
        "held_out": metrics, "reported": {REPORTED[kind]: metrics[REPORTED[kind]]},
        "history": [{k: r[k] for k in ("epoch", "train_loss", "val_loss")}
                    for r in trainer.history],
    }


def main(argv=None):
    args = parse_args(argv)
    train, held_out = load_split(args.data, args.limit)
    print(f"MNIST test set: {len(train)} images to train, {len(held_out)} held out; "
          f"{args.epochs} epochs, Adam lr {args.lr}, batch {args.batch_size}, seed {args.seed}")
    results = []
    for kind in args.models:
        result = run_one(kind, MODELS[kind], train, held_out, args)
        results.append(result)
        name, value = next(iter(result["reported"].items()))
        unit = "nats per image" if name == "nelbo" else "nats per pixel"
        extra = ""
        if kind == "dae":
            m = result["held_out"]
            extra = (f"  (PSNR noisy {m['psnr_noisy']:.2f} dB -> denoised "
                     f"{m['psnr_denoised']:.2f} dB)")
        print(f"{kind.upper():4s} held-out {name:5s} = {value:.4f} {unit}{extra}  "
              f"[{result['parameters']:,} parameters, {result['train_seconds']} s]", flush=True)
    doc = {
        # Paths relative to the working directory, so the record names no machine's folders.
        "command": " ".join(["python", os.path.relpath(sys.argv[0]), *sys.argv[1:]]),
        "data": os.path.relpath(args.data), "train_images": len(train),
        "held_out_images": len(held_out), "epochs": args.epochs, "batch_size": args.batch_size,
        "optimizer": "adam", "lr": args.lr, "seed": args.seed, "device": args.device,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "results": results,
    }
    from aecore.io.checkpoint import json_safe
    with open(args.json, "w") as f:
        json.dump(json_safe(doc), f, indent=1)
        f.write("\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
