"""One rank of the data-parallel tests, run as `mpiexec -n 2 python worker.py SCENARIO OUT ...`
(or plainly, as the one process the ranks are compared with). Rank 0 writes OUT (.npz or
.json); test_distributed.py compares.

    train OUT MODEL DTYPE BATCH EPOCHS   Trainer on a small synthetic set; OUT: the final weights,
                                         the per-epoch losses
    loop OUT                             a training loop of one's own: ShardedLoader and
                                         MultiNodeOptimizer; OUT: the final weights
    allreduce OUT                        the bucketed gradient allreduce against a plain sum
    sampler OUT                          every rank's indices of every batch of two epochs
    hang | raise | die                   rank 1 stops answering / raises / is killed after the
                                         first epoch
"""

import json
import os
import signal
import sys
import time

import numpy as np

import aecore as ae
from aecore import distributed, optim
from aecore.data import Dataset
from aecore.models import build_model
from aecore.train import Trainer

# 46 random images, 9 of them held out: 37 to train on, so that a global batch of 12 ends each
# epoch with a batch of 1 (rank 1's part empty) and one of 16 with a batch of 5 (3 + 2).
MODELS = {
    "ae": ("ae", {"hidden": [12], "latent_dim": 4}, (1, 8, 8)),
    "dae": ("dae", {"hidden": [12], "latent_dim": 4, "noise": "gaussian", "noise_level": 0.3},
            (1, 8, 8)),
    "vae": ("vae", {"hidden": [12], "latent_dim": 3}, (1, 8, 8)),
    "cae": ("cae", {"filters": [3, 2], "latent_dim": 4}, (1, 8, 8)),
}


def images(n, shape, seed=5):
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


def train(world, out, kind, dtype, batch, epochs, n=46):
    name, options, shape = MODELS[kind]
    ae.manual_seed(3)
    model = build_model(name, shape, **options)
    if dtype == "float64":
        model.double()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    config = {"batch_size": batch, "epochs": epochs, "val_fraction": 0.2, "seed": 11,
              "model": name}
    data = Dataset(images(n, shape), None, "random", "random(5)")
    trainer = Trainer(model, optimizer, data, config, quiet=True)
    trainer.fit()
    if world.is_root:
        weights = {k: np.asarray(v) for k, v in model.state_dict().items()}
        np.savez(out, **weights, train_loss=[r["train_loss"] for r in trainer.history],
                 val_loss=[r["val_loss"] for r in trainer.history])


def loop(world, out):
    """The README's loop: each rank's loss is the mean of its equal part of the batch of 16."""
    from aecore.distributed import MultiNodeOptimizer, ShardedLoader
    name, options, shape = MODELS["ae"]
    ae.manual_seed(world.rank)                 # different weights: the wrapper sends rank 0's
    model = build_model(name, shape, **options).double()
    optimizer = MultiNodeOptimizer(optim.Adam(model.parameters(), lr=1e-2), world, module=model)
    loader = ShardedLoader(images(48, shape), batch_size=16, seed=2, rank=world.rank,
                           size=world.size)
    for _ in range(2):
        for xb, _ in loader:
            optimizer.zero_grad()
            model.loss(xb)[0].backward()
            optimizer.step()
    if world.is_root:
        np.savez(out, **{k: np.asarray(v) for k, v in model.state_dict().items()})


def allreduce(world, out):
    class P:                                  # a parameter as allreduce_gradients sees one
        def __init__(self, shape, dtype, rank):
            self.data = np.zeros(shape, dtype)
            self.grad = np.random.default_rng(rank * 100 + sum(shape)).standard_normal(
                shape).astype(dtype)
            self.xp, self.dtype, self.shape = np, np.dtype(dtype), shape

    shapes = [((3, 4), np.float32), ((1000,), np.float32), ((7,), np.float64), ((5, 5), np.float32)]
    results = {}
    for bucket_bytes in (16, 4096, 1 << 22):
        world.bucket_bytes = bucket_bytes
        params = [P(s, d, world.rank) for s, d in shapes]
        params[2].grad = None if world.rank == 1 else params[2].grad   # no gradient: zeros
        world.allreduce_gradients(params, weight=0.5)
        results[bucket_bytes] = [p.grad for p in params]
    expected = []
    for s, d in shapes:
        total = np.zeros(s, np.float64)
        for rank in range(world.size):
            if not (d is np.float64 and rank == 1):
                total += 0.5 * np.random.default_rng(rank * 100 + sum(s)).standard_normal(
                    s).astype(d)
        expected.append(total)
    if world.is_root:
        report = {str(b): [float(np.abs(g.astype(np.float64) - e).max())
                           for g, e in zip(grads, expected)] + [str(g.dtype) for g in grads]
                  for b, grads in results.items()}
        json.dump(report, open(out, "w"))


def sampler(world, out):
    from aecore.distributed import ShardedLoader
    loader = ShardedLoader(np.arange(23)[:, None], batch_size=8, shuffle=True, seed=4,
                           rank=world.rank, size=world.size)
    mine = [[xb[:, 0].tolist() for xb, _ in loader] for _ in range(2)]
    everyone = world.comm.gather(mine, root=0) if world.size > 1 else [mine]
    if world.is_root:
        json.dump(everyone, open(out, "w"))


def failing(world, out, how):
    def stop_rank_1(trainer, record):
        if world.rank != 1:
            return
        if how == "hang":
            time.sleep(600)
        elif how == "raise":
            raise RuntimeError("rank 1 fails on purpose")
        else:
            os.kill(os.getpid(), signal.SIGKILL)

    name, options, shape = MODELS["ae"]
    model = build_model(name, shape, **options)
    data = Dataset(images(45, shape), None, "random", "random(5)")
    trainer = Trainer(model, optim.Adam(model.parameters()), data,
                      {"batch_size": 4, "epochs": 3, "seed": 1}, quiet=True,
                      callbacks=[stop_rank_1])
    trainer.fit()


if __name__ == "__main__":
    scenario, out = sys.argv[1], sys.argv[2]
    world = distributed.init()
    if scenario == "train":
        kind, dtype, batch, epochs = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        train(world, out, kind, dtype, batch, epochs)
    elif scenario == "loop":
        loop(world, out)
    elif scenario == "allreduce":
        allreduce(world, out)
    elif scenario == "sampler":
        sampler(world, out)
    else:
        failing(world, out, scenario)
