"""Model benchmark: whole training steps (forward, backward, Adam step), ours beside PyTorch's.

    python bench/models.py                         # classic CAE, dense AE, conv VAE; batch 200
    python bench/models.py --quick                 # batch 8, 2 steps: checks the code runs
    python bench/models.py --models cae --steps 30 --profile

Models whose decoder resizes by nearest upsampling (the CAE) fold each whole-factor resize
into the conv after it (aecore.functional.upsample_conv2d): the same step with the fold turned
off is timed in the same rounds too ("ms/step, resizes not folded"), so the fold's share of the
result is measured. PyTorch runs the resize and the conv as two ops.

One training step is exactly what a training loop does per batch:
    optimizer.zero_grad(); loss, _ = model.loss(x); loss.backward(); optimizer.step()
with Adam (lr 1e-3). The step is timed `steps` times after `warmup` untimed steps (JIT compile,
first allocations); the figure is the median. On the CPU each library runs alone in a process of
its own, as a user runs it: one process works at a time, each step is timed inside its process,
everyone pauses between blocks of 5 steps, and the blocks alternate round by round (both see the
same load on a shared machine); the per-round ratio's quartiles are reported beside the ratio of
the medians, so the noise is visible (see StepProcess).

The PyTorch side is the same architecture written with torch.nn in this file, built from OUR
model object (its layers, sizes, activations, paddings), and loaded with our initial weights:
the parameter names must match one for one, and the forward pass must give the same logits and
loss (checked before timing, reported as max_abs_err / loss_diff). TensorFlow's 'same' padding
and pooling are reproduced exactly (an explicit F.pad where it is asymmetric, ceil_mode for the
2x2 'same' pooling, a crop for the 'same' transposed conv). PyTorch runs eagerly, with as many
threads as our kernels (torch.set_num_threads). speedup_vs_torch = torch ms / our ms.
"""

import argparse
import os
import sys

try:  # first: bench/__init__.py imports aecore before NumPy
    from . import common
except ImportError:  # run as a script, or loaded by path: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

import numpy as np

MODELS = {
    "cae": dict(kind="cae"),                        # the classic Keras CAE (conv 32, 32, 16 ...)
    "ae": dict(kind="ae"),                          # dense 784-64-32-16-32-64-784
    "vae": dict(kind="vae", encoder="conv"),        # conv VAE (stride-2 convs, transposed convs)
    "vae_dense": dict(kind="vae", encoder="dense"),  # PyTorch's example VAE 784-400-20
    "dae": dict(kind="dae", base="cae"),             # the CAE on inputs with Gaussian noise 0.5
}


# ----------------------------------------------------------------------------- PyTorch mirrors
def torch_mirror(torch, model):
    """A torch.nn.Module with our model's architecture and parameter names, our weights copied."""
    nn, F = torch.nn, torch.nn.functional

    def act(name, x):
        if name == "relu":
            return F.relu(x)
        if name == "sigmoid":
            return torch.sigmoid(x)
        if name == "tanh":
            return torch.tanh(x)
        if name == "leaky_relu":
            return F.leaky_relu(x, 0.01)
        if name == "softplus":
            return F.softplus(x)
        if name == "linear":
            return x
        raise ValueError(f"no PyTorch mirror for activation {name!r}")

    from aecore.kernels.geometry import same_padding as same_pads  # TF's rule, one definition

    def conv_parameters(mirror, ours):
        """Empty weight and bias of our conv's shapes (filled from ours later), its stride and padding."""
        mirror.weight = nn.Parameter(torch.empty(tuple(ours.weight.shape)))
        mirror.bias = nn.Parameter(torch.empty(tuple(ours.bias.shape))) if ours.bias is not None else None
        mirror.stride, mirror.padding = tuple(ours.stride), ours.padding

    class Conv(nn.Module):
        """Mirror of aecore.nn.Conv2d (int or 'same'/'valid' padding)."""

        def __init__(self, ours):
            super().__init__()
            conv_parameters(self, ours)

        def forward(self, x):
            k_h, k_w = self.weight.shape[2:]
            if self.padding == "valid":
                return F.conv2d(x, self.weight, self.bias, self.stride)
            if self.padding == "same":
                top, bottom = same_pads(x.shape[2], k_h, self.stride[0])
                left, right = same_pads(x.shape[3], k_w, self.stride[1])
                if (top, left) != (bottom, right):
                    x = F.pad(x, (left, right, top, bottom))
                    return F.conv2d(x, self.weight, self.bias, self.stride)
                return F.conv2d(x, self.weight, self.bias, self.stride, (top, left))
            return F.conv2d(x, self.weight, self.bias, self.stride, tuple(self.padding))

    class ConvT(nn.Module):
        """Mirror of aecore.nn.ConvTranspose2d; 'same' = the full result cropped to H * stride."""

        def __init__(self, ours):
            super().__init__()
            conv_parameters(self, ours)
            self.output_padding = tuple(ours.output_padding)

        def forward(self, x):
            if self.padding == "same":
                (s_h, s_w), (k_h, k_w) = self.stride, self.weight.shape[2:]
                if k_h < s_h or k_w < s_w:
                    raise ValueError("no PyTorch mirror for a 'same' transposed conv with kernel < stride")
                full = F.conv_transpose2d(x, self.weight, self.bias, self.stride)
                top, left = (k_h - s_h) // 2, (k_w - s_w) // 2
                return full[:, :, top:top + x.shape[2] * s_h, left:left + x.shape[3] * s_w]
            if isinstance(self.padding, str):
                raise ValueError(f"no PyTorch mirror for padding {self.padding!r}")
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, tuple(self.padding),
                                      self.output_padding)

    def linear(ours):
        layer = nn.Linear(ours.weight.shape[1], ours.weight.shape[0], bias=ours.bias is not None)
        return layer

    class DenseStack(nn.Module):
        def __init__(self, ours):
            super().__init__()
            self.activations = ours.activations
            for name, layer in ours.named_children():
                self.add_module(name, linear(layer))

        def forward(self, x):
            for layer, name in zip(self.children(), self.activations):
                x = act(name, layer(x))
            return x

    class ConvEncoder(nn.Module):
        def __init__(self, ours):
            super().__init__()
            self.downsample, self.activation = ours.downsample, ours.activation
            self.sizes = [tuple(s) for s in ours.sizes]
            for name, layer in ours.named_children():
                self.add_module(name, Conv(layer))

        def forward(self, x):
            for conv in self.children():
                x = act(self.activation, conv(x))
                if self.downsample == "pool":
                    # 2x2 'same' pooling: the padding is at the end, so it is ceil mode
                    x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            return x

    class ConvDecoder(nn.Module):
        def __init__(self, ours):
            super().__init__()
            self.targets, self.upsample, self.activation = ours.targets, ours.upsample, ours.activation
            for name, layer in ours.named_children():
                self.add_module(name, ConvT(layer) if type(layer).__name__ == "ConvTranspose2d"
                                else Conv(layer))

        def forward(self, x):
            stages = [m for name, m in self.named_children() if name != "out"]
            for layer, (h, w) in zip(stages, self.targets):
                if self.upsample == "transpose":
                    x = layer(x)[:, :, :h, :w]
                else:
                    mode = self.upsample
                    x = layer(F.interpolate(x, size=(h, w), mode=mode,
                                            align_corners=False if mode == "bilinear" else None))
                x = act(self.activation, x)
            return self.out(x)

    def bce_mean(logits, x):
        return F.binary_cross_entropy_with_logits(logits, x)

    class DeterministicMirror(nn.Module):
        """AE and CAE: encoder -> [dense bottleneck] -> decoder, mean per-pixel BCE on logits."""

        def __init__(self, ours):
            super().__init__()
            if getattr(ours, "sparse", 0) or getattr(ours, "contractive", 0):
                raise ValueError("the PyTorch mirror covers models without sparse/contractive penalties")
            if ours.reconstruction != "bce":
                raise ValueError("the PyTorch mirror covers reconstruction='bce'")
            self.kind, self.input_shape = ours.kind, tuple(ours.input_shape)
            if ours.kind == "ae":
                self.encoder, self.decoder = DenseStack(ours.encoder), DenseStack(ours.decoder)
            else:
                self.encoder, self.decoder = ConvEncoder(ours.encoder), ConvDecoder(ours.decoder)
                self.bottleneck = ours.code_shape != ours.conv_code_shape
                self.conv_code_shape, self.activation = tuple(ours.conv_code_shape), ours.activation
                if self.bottleneck:
                    self.to_code, self.from_code = linear(ours.to_code), linear(ours.from_code)

        def forward(self, x):
            if self.kind == "ae":
                code = self.encoder(x.reshape(x.shape[0], -1))
                return self.decoder(code).reshape((x.shape[0],) + self.input_shape)
            code = self.encoder(x)
            if self.bottleneck:
                code = self.to_code(code.reshape(code.shape[0], -1))
                code = act(self.activation, self.from_code(code))
                code = code.reshape((code.shape[0],) + self.conv_code_shape)
            return self.decoder(code)

        def loss(self, x, eps=None):
            return bce_mean(self.forward(x), x)

    class VAEMirror(nn.Module):
        def __init__(self, ours):
            super().__init__()
            if ours.reconstruction != "bce":
                raise ValueError("the PyTorch mirror covers reconstruction='bce'")
            self.encoder_kind, self.input_shape = ours.encoder_kind, tuple(ours.input_shape)
            self.latent_dim, self.beta, self.clamp = ours.latent_dim, ours.beta, ours.logvar_clamp
            if ours.encoder_kind == "conv":
                self.conv = ConvEncoder(ours.conv)
                self.expand = DenseStack(ours.expand)
                self.conv_shape = tuple(ours.conv_shape)
                self.decoder = ConvDecoder(ours.decoder)
            else:
                self.decoder = DenseStack(ours.decoder)
            self.body = DenseStack(ours.body) if ours.body is not None else None
            self.mu, self.logvar = linear(ours.mu), linear(ours.logvar)

        def encode(self, x):
            h = self.conv(x) if self.encoder_kind == "conv" else x
            h = h.reshape(h.shape[0], -1)
            if self.body is not None:
                h = self.body(h)
            return self.mu(h), torch.clamp(self.logvar(h), *self.clamp)

        def decode(self, z):
            if self.encoder_kind == "conv":
                h = self.expand(z)
                return self.decoder(h.reshape((h.shape[0],) + self.conv_shape))
            return self.decoder(z).reshape((z.shape[0],) + self.input_shape)

        def forward(self, x):  # deterministic (z = mu), for the validation
            return self.decode(self.encode(x)[0])

        def loss(self, x, eps=None):
            mu, logvar = self.encode(x)
            eps = torch.randn_like(mu) if eps is None else eps
            logits = self.decode(mu + torch.exp(0.5 * logvar) * eps)
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
            kl = -0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum(1)
            return (recon + self.beta * kl).mean()

    class DAEMirror(nn.Module):
        """The base model trained on x + level * N(0, 1), clipped to [0, 1] (Gaussian noise)."""

        def __init__(self, ours):
            super().__init__()
            if ours.noise != "gaussian":
                raise ValueError("the PyTorch mirror of the DAE covers noise='gaussian'")
            self.level = ours.noise_level
            self.base = DeterministicMirror(ours.base)

        def forward(self, x):
            return self.base(x)

        def loss(self, x, eps=None):
            noisy = torch.clamp(x + self.level * torch.randn_like(x), 0.0, 1.0)
            return bce_mean(self.base(noisy), x)

    if model.kind == "vae":
        mirror = VAEMirror(model)
    elif model.kind == "dae":
        mirror = DAEMirror(model)
    else:
        mirror = DeterministicMirror(model)
    ours = dict(model.named_parameters())
    theirs = dict(mirror.named_parameters())
    if set(ours) != set(theirs):
        raise RuntimeError(f"PyTorch mirror of {model.kind!r} does not match our parameters: only "
                           f"ours {sorted(set(ours) - set(theirs))}, only theirs "
                           f"{sorted(set(theirs) - set(ours))}")
    with torch.no_grad():
        for name, parameter in ours.items():
            value = torch.from_numpy(np.ascontiguousarray(common.to_numpy(parameter.data)))
            if tuple(value.shape) != tuple(theirs[name].shape):
                raise RuntimeError(f"shape mismatch for {name}: {tuple(value.shape)} vs "
                                   f"{tuple(theirs[name].shape)}")
            theirs[name].copy_(value)
    return mirror


# ------------------------------------------------------------ each library alone, in its own process
# On the CPU every timed step runs in a process of its own: aecore's (and aecore's with the
# resizes not folded) and PyTorch's, each as a user runs it. The parent builds nothing it times:
# it asks one worker for a block of steps, the worker times each step itself (no pipe inside a
# timed step) and replies; the parent waits idle, everyone pauses between blocks (so no thread
# pool still spins when the next block starts), and blocks alternate round by round
# (common.time_blocks_alternating). In one process the two libraries would also share malloc:
# aecore's host cache keeps its buffers, so glibc never raises its mmap threshold and PyTorch's
# large arrays come as fresh pages every step (its CAE step: 239-403 ms beside the cache,
# 223-259 ms without it).

WORKER_KINDS = ("aecore", "aecore-unfolded", "torch")


def _step_worker(connection, kind, name, batch):
    """The child: MODELS[name] with seed 0 and Adam (lr 1e-3), as `kind` (WORKER_KINDS); on each
    ("block", k, first) request, one step that wakes the thread pools after the pause (timed
    only when `first`: the very first step, the JIT compile), then k training steps, each timed
    here; replies with the list of ms."""
    import time
    ae = common.import_aecore()
    from aecore import optim
    from aecore.models import build_model
    options = dict(MODELS[name])
    ae.manual_seed(0)
    model = build_model(options.pop("kind"), **options)
    x_host = _batch(batch)
    if kind == "torch":
        torch = common.import_torch()
        model = torch_mirror(torch, model)
        x = torch.from_numpy(x_host)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def loss():
            return model.loss(x)
    else:
        for layer in model.modules():
            if kind == "aecore-unfolded" and getattr(layer, "fold", False):
                layer.fold = False
        x = ae.tensor(x_host)
        optimizer = optim.Adam(model.parameters(), lr=1e-3)

        def loss():
            return model.loss(x)[0]
    connection.send("ready")
    while True:
        request = connection.recv()
        if request[0] != "block":
            break
        times = []
        for index in range(request[1] + 1):       # the first wakes the pools after the pause
            started = time.perf_counter()
            optimizer.zero_grad()
            loss().backward()
            optimizer.step()
            if index or request[2]:
                times.append((time.perf_counter() - started) * 1e3)
        connection.send(times)
    connection.close()


class StepProcess:
    """A training step of MODELS[name] at `batch`, in a child process of its own (kind: one of
    WORKER_KINDS); block(k) runs k steps there and returns their times in ms."""

    def __init__(self, kind, name, batch):
        import multiprocessing
        context = multiprocessing.get_context("spawn")   # a fresh interpreter: no forked threads
        self.kind = kind
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=common.call_in_module, daemon=True,
                                       args=("bench.models", "_step_worker", child_end, kind,
                                             name, batch))
        self.process.start()
        child_end.close()
        self._receive("ready")

    def _receive(self, what):
        try:
            return self.connection.recv()
        except EOFError:
            raise RuntimeError(f"the {self.kind} benchmark process exited (code "
                               f"{self.process.exitcode}) before sending {what}") from None

    def block(self, steps, first=False):
        """The times of `steps` steps, after one untimed step (timed too when first=True)."""
        self.connection.send(("block", int(steps), bool(first)))
        return self._receive(f"the times of {steps} steps")

    def close(self):
        if self.process.is_alive():
            self.connection.send(("stop",))
            self.process.join(timeout=30)
        self.connection.close()


# ------------------------------------------------------------------------------------- the run
def _batch(batch, seed=0):
    from aecore.data import synthetic_digits
    images, _ = synthetic_digits(batch, seed=seed)
    return images  # (batch, 1, 28, 28) float32 in [0, 1]


def _validate(ae, torch, model, mirror, x_host, device):
    """Same logits (deterministic forward) and the same loss (same eps for the VAE)."""
    from aecore import random as ae_random
    x = ae.tensor(x_host, device=device)
    with ae.no_grad():
        if model.kind == "vae":
            ours_logits = model.forward(x, sample=False)[0]
        else:
            ours_logits = model.forward(x)
    xt = torch.from_numpy(x_host).to(device)
    with torch.no_grad():
        theirs_logits = mirror.forward(xt)
        check = common.compare(theirs_logits, ours_logits.data, tol=1e-4)
        eps = None
        state = ae_random.get_rng_state()
        if model.kind == "vae":  # draw the eps our loss will draw, then rewind the generator
            eps = torch.from_numpy(ae_random.randn((x_host.shape[0], model.latent_dim))).to(device)
            ae_random.set_rng_state(state)
        ours_model, theirs_model = (model.base, mirror.base) if model.kind == "dae" else (model, mirror)
        with ae.no_grad():  # the DAE: its base's loss on the clean input (the noise differs)
            ours_loss = float(common.to_numpy(ours_model.loss(x)[0].data))
        ae_random.set_rng_state(state)
        theirs_loss = float(theirs_model.loss(xt, eps))
    return dict(logits_max_abs_err=check["max_abs_err"], logits_agree=check["ok"],
                loss=ours_loss, torch_loss=theirs_loss,
                loss_diff=abs(ours_loss - theirs_loss),
                valid=bool(check["ok"] and abs(ours_loss - theirs_loss) <= 1e-4 * max(1.0, abs(ours_loss))))


def run(models=("cae", "ae", "vae"), batch=200, steps=None, torch=True, out=None, quick=False,
        warmup=None, profile=False, device=None, verbose=True, refresh_peak=None):
    """Time whole training steps of each model; return a list of result dicts (one per model).

    models: keys of MODELS ("cae", "ae", "vae" = conv VAE, "vae_dense", "dae"). steps / warmup:
    timed / untimed steps (default 20 / 3; quick: 2 / 1, batch 8). torch: PyTorch side by side
    when installed. profile: also record one step with aecore.profile() (top ops in the JSON),
    after `warmup` steps of this process's own.
    device: "cpu" or "cuda" (default: cuda when CuPy sees a GPU). out: JSON path (default
    bench/results/models[-quick].json); False writes nothing. refresh_peak: measure the
    machine's peak again now (default: yes, except in quick mode).
    """
    ae = common.import_aecore()
    from aecore import optim
    from aecore.backend import gpu_available
    from aecore.models import build_model

    quick = common.quick_requested(quick)
    if quick:
        batch = min(batch, 8)
    steps = int(steps if steps is not None else (2 if quick else 20))
    warmup = int(warmup if warmup is not None else (1 if quick else 3))
    device = device or ("cuda" if gpu_available() else "cpu")
    torch_module = common.import_torch() if torch else None
    torch_device = "cuda" if device == "cuda" else "cpu"
    if torch_module is not None and device == "cuda" and not common.torch_cuda_available(torch_module):
        torch_module = None
    peak = common.machine_peak(device, (not quick) if refresh_peak is None else bool(refresh_peak))
    x_host = _batch(batch)

    results = []
    for name in models:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
        options = dict(MODELS[name])
        ae.manual_seed(0)
        model = build_model(options.pop("kind"), **options)
        if device == "cuda":
            model.to("cuda")
        record = dict(model=name, kind=model.kind, config=model.config, batch=batch,
                      device=device, parameters=int(sum(int(np.prod(p.shape)) for p in model.parameters())))

        mirror = None
        if torch_module is not None:
            mirror = torch_mirror(torch_module, model).to(torch_device)
            record.update(_validate(ae, torch_module, model, mirror, x_host, device))

        x = ae.tensor(x_host, device=device)
        optimizer = optim.Adam(model.parameters(), lr=1e-3)

        def step():
            optimizer.zero_grad()
            loss, _ = model.loss(x)
            loss.backward()
            optimizer.step()

        # layers that fold their nearest resize into the conv (F.upsample_conv2d): the same
        # step with the fold turned off is timed too, so the fold's share is measured, not assumed
        folding = [m for m in model.modules() if getattr(m, "fold", False)]

        def unfolded_step():
            for layer in folding:
                layer.fold = False
            try:
                step()
            finally:
                for layer in folding:
                    layer.fold = True

        torch_step = None
        if mirror is not None and device == "cuda":
            torch = torch_module
            xt = torch.from_numpy(x_host).to(torch_device)
            torch_optimizer = torch.optim.Adam(mirror.parameters(), lr=1e-3)

            def torch_step():
                torch_optimizer.zero_grad()
                loss = mirror.loss(xt)
                loss.backward()
                torch_optimizer.step()

        record.update(torch_ms=None, speedup_vs_torch=None, unfolded_ms=None, fold_speedup=None)
        if device == "cuda":
            record.update(common.time_gpu(step, steps, warmup, library="cupy"))
            if folding:
                timing = common.time_gpu(unfolded_step, steps, warmup, library="cupy")
                record.update(unfolded_ms=timing["median_ms"])
            if torch_step is not None:
                timing = common.time_gpu(torch_step, steps, warmup, library="torch")
                record.update(torch_ms=timing["median_ms"], torch_first_call_ms=timing["first_call_ms"],
                              torch_times_ms=timing["times_ms"])
        else:
            # each library alone in its own process, blocks alternating round by round
            kinds = {"ours": "aecore"}
            if mirror is not None:
                kinds["torch"] = "torch"
            if folding:
                kinds["unfolded"] = "aecore-unfolded"
            workers = {}
            try:
                for label, kind in kinds.items():
                    workers[label] = StepProcess(kind, name, batch)
                timing = common.time_blocks_alternating(workers, steps, warmup,
                                                        block=min(5, steps))
            finally:
                for worker in workers.values():
                    worker.close()
            record.update(timing["ours"])
            if "torch" in workers:
                record.update(torch_ms=timing["torch"]["median_ms"],
                              torch_first_call_ms=timing["torch"]["first_call_ms"],
                              torch_times_ms=timing["torch"]["times_ms"],
                              speedup_per_round=timing["ratios"]["torch"])
            if folding:
                record.update(unfolded_ms=timing["unfolded"]["median_ms"],
                              fold_speedup_per_round=timing["ratios"]["unfolded"])
        if record["unfolded_ms"] is not None:
            record["fold_speedup"] = record["unfolded_ms"] / record["median_ms"]
        record["images_per_s"] = batch / (record["median_ms"] / 1e3)
        if record["torch_ms"] is not None:
            record["speedup_vs_torch"] = record["torch_ms"] / record["median_ms"]

        if profile:     # this process's own step, after its own warm-up: no compile in it
            for _ in range(warmup):
                step()
            with ae.profile() as prof:
                step()
            record["profile"] = prof.rows(group_by="op")[:12]
            if verbose:
                print(prof.table(group_by="op", limit=12))
        results.append(common.sanitize(record))
        if verbose:
            torch_part = (f"  torch {record['torch_ms']:.2f} ms (x{record['speedup_vs_torch']:.2f})"
                          if record["torch_ms"] is not None else "")
            if record.get("speedup_per_round"):
                spread = record["speedup_per_round"]
                torch_part += (f"; per round x{spread['median']:.2f}"
                               f" (quartiles {spread['q1']:.2f}-{spread['q3']:.2f})")
            check = "" if record.get("valid", True) else "  MIRROR DISAGREES"
            print(f"{name:<10} batch {batch}: {record['median_ms']:.2f} ms/step{torch_part}{check}",
                  flush=True)

    machine = common.describe_machine(device, torch=torch_module, peak=peak)
    markdown = ("### models: one training step (forward + backward + Adam), median ms\n\n"
                + common.markdown_table(results, COLUMNS))
    payload = common.sanitize(dict(benchmark="models", machine=machine,
                                   settings=dict(quick=quick, batch=batch, steps=steps,
                                                 warmup=warmup, optimizer="Adam lr=1e-3"),
                                   results=results, markdown=markdown))
    common.save_report(payload, out, "models", quick, verbose)
    return results


COLUMNS = [
    ("model", "model", "s"), ("parameters", "params", "d"), ("batch", "batch", "d"),
    ("median_ms", "ms/step", ".2f"), ("images_per_s", "images/s", ".0f"),
    ("torch_ms", "torch ms/step", ".2f"), ("speedup_vs_torch", "x torch", ".2f"),
    ("speedup_per_round", "x torch per round: quartiles", lambda r: "-" if not r.get("speedup_per_round")
     else "{q1:.2f} / {median:.2f} / {q3:.2f}".format(**r["speedup_per_round"])),
    ("unfolded_ms", "ms/step, resizes not folded", ".2f"),
    ("valid", "same as torch", lambda r: "-" if r.get("valid") is None else
     ("yes" if r["valid"] else f"NO (loss diff {r.get('loss_diff', 0):.2g})")),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 8, 2 steps (a smoke test)")
    parser.add_argument("--models", nargs="+", default=["cae", "ae", "vae"], choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--profile", action="store_true",
                        help="print aecore's per-op profile of one step (after the warm-up steps)")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--out", help="JSON file (default bench/results/models.json)")
    args = parser.parse_args(argv)
    run(models=args.models, batch=args.batch, steps=args.steps, torch=not args.no_torch,
        out=args.out, quick=args.quick, warmup=args.warmup, profile=args.profile,
        device=args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
