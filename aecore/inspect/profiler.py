"""The per-op profiler: every op call, forward and backward, against this machine's peak.

    import aecore as ae
    with ae.profile() as prof:
        loss, _ = model.loss(x)
        loss.backward()
    print(prof.table())          # sorted by total time, aggregated by op + tier + shapes
    prof.to_json("profile.json")

What is recorded, and how:
- every kernel call (conv2d_forward, conv2d_backward_input, conv2d_backward_weight,
  max_pool2d_backward, ...) through an observer of the kernel registry that wraps the dispatched
  implementation: the op, the tier that ran it, the input shapes, the wall time. On a GPU (CuPy
  arrays) the stream is synchronized before and after the call, so the time is the kernel's;
- every other graph op (MatMul, ReLU, Add, the losses, ...) through the observers of
  aecore.tensor (forward in Function.apply, backward in Tensor.backward), timed the same way;
- what a kernel-backed graph op does besides its kernels ("glue": argument checks, reshapes)
  as a row of its own, so the times add up to the total without counting a kernel twice.
FLOPs and bytes come from aecore.inspect.costs (the formulas are in its docstring); GFLOP/s, GB/s
and the share of the machine's roofline from aecore.inspect.peak (measured once per machine, on
first use by table()/to_json(), never while the profile is recording).
"""

import functools
import json
import time

from ..backend import cupy_module, is_cupy_array
from ..kernels import geometry, registry
from ..tensor import _observers as _graph_observers
from .costs import KERNEL_FUNCTIONS, function_geom, kernel_cost, op_cost
from .peak import machine_peak, share_of_peak
from .table import format_table, human


def _synchronize():
    cupy = cupy_module()
    if cupy is not None:
        cupy.cuda.get_current_stream().synchronize()


def _is_array(value):
    return hasattr(value, "shape") and hasattr(value, "dtype")


class Event:
    """One op call: op, tier, pass_ ("forward"/"backward"), kind ("kernel", "op" or "glue"),
    shapes (input shapes), dtype, seconds, flops, bytes, device, and the context (the module
    that was running, when a summary sets it)."""

    __slots__ = ("op", "tier", "pass_", "kind", "shapes", "dtype", "itemsize", "seconds", "flops",
                 "bytes", "device", "start", "context", "function", "out_shape", "out_bytes")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def as_dict(self):
        out = {name: getattr(self, name) for name in self.__slots__ if name != "context"}
        out["shapes"] = [list(s) for s in self.shapes]
        out["pass"] = out.pop("pass_")
        return out

    def __repr__(self):
        return (f"Event({self.op} [{self.tier}] {self.pass_} {self.shapes} "
                f"{self.seconds * 1e3:.3f} ms flops={self.flops})")


class Profiler:
    """Records every op call while active (see the module docstring). Use `aecore.profile()`.

    peak: measure/compare against the machine's peak in table() and to_json() (default True).
    """

    def __init__(self, peak=True):
        self.events = []
        self.context = None  # set by aecore.inspect.summary to attribute ops to modules
        self.use_peak = peak
        self.wall_seconds = None
        self._pending = []  # kernel events since the last graph-op event
        self._started = None
        self._peak = None

    # ------------------------------------------------------------------ activation
    def __enter__(self):
        self._started = time.perf_counter()
        _graph_observers.append(self)
        registry._observers.append(self)
        return self

    def __exit__(self, *exc):
        for observers in (_graph_observers, registry._observers):
            for index in range(len(observers) - 1, -1, -1):
                if observers[index] is self:
                    del observers[index]
                    break
        self.wall_seconds = time.perf_counter() - self._started
        return False

    # ------------------------------------------------------------------ kernel observer
    def wrap_kernel(self, op, tier, implementation):
        profiler = self

        @functools.wraps(implementation)
        def timed(*args, **kwargs):
            on_gpu = any(is_cupy_array(a) for a in args if _is_array(a))
            if on_gpu:
                _synchronize()
            started = time.perf_counter()
            result = implementation(*args, **kwargs)
            if on_gpu:
                _synchronize()
            seconds = time.perf_counter() - started
            profiler._record_kernel(op, tier, args, seconds, started, on_gpu)
            return result

        return timed

    def _record_kernel(self, op, tier, args, seconds, started, on_gpu):
        arrays = [a for a in args if _is_array(a)]
        geom = args[-1] if args and isinstance(args[-1], geometry.Geometry) else None
        itemsize = arrays[0].dtype.itemsize if arrays else 4
        try:
            flops, moved = kernel_cost(op, geom, [a.shape for a in arrays], itemsize)
        except (KeyError, TypeError):
            flops = moved = None
        event = Event(op=op, tier=tier, pass_="forward" if op.endswith("_forward") else "backward",
                      kind="kernel", shapes=tuple(tuple(int(s) for s in a.shape) for a in arrays),
                      dtype=str(arrays[0].dtype) if arrays else None, itemsize=itemsize,
                      seconds=seconds, flops=flops, bytes=moved,
                      device="cuda" if on_gpu else "cpu", start=started - self._started,
                      context=self.context)
        self.events.append(event)
        self._pending.append(event)

    # ------------------------------------------------------------------ graph observer
    def on_forward(self, function, arrays, output, seconds, started):
        self._record_function(function, "forward", arrays, [output], output, seconds, started)

    def on_backward(self, function, grad, input_grads, seconds, started):
        # inputs of the backward: the output gradient and the saved arrays; outputs: the input grads
        self._record_function(function, "backward", [grad], [g for g in input_grads if g is not None],
                              None, seconds, started, input_grads=input_grads)

    def _record_function(self, function, pass_, inputs, outputs, output, seconds, started,
                         input_grads=None):
        ended = time.perf_counter()
        arrays = [a for a in list(inputs) + list(outputs) if _is_array(a)]
        on_gpu = any(is_cupy_array(a) for a in arrays)
        if on_gpu:  # the work the op queued on the stream belongs to it
            _synchronize()
            seconds += time.perf_counter() - ended
        # the kernels this op ran: those that started after it did. `started` comes from the
        # graph; rebuilding it as (now - seconds) put it late by however long the machine took
        # to get here, and then a kernel that starts the op (ReLU's) was missed and its FLOPs
        # were counted twice, on a loaded machine only
        inner = [e for e in self._pending if e.start >= started - self._started]
        self._pending = []
        first = next((a for a in inputs if _is_array(a)), None)
        itemsize = first.dtype.itemsize if first is not None else 4
        dtype = str(first.dtype) if first is not None else None
        name = function.name
        shapes = tuple(tuple(int(s) for s in a.shape) for a in inputs if _is_array(a))
        if inner or name in KERNEL_FUNCTIONS:
            # a kernel-backed op: its kernels are events of their own; what is left is glue
            kind = "glue"
            seconds = max(seconds - sum(e.seconds for e in inner), 0.0)
            flops = moved = 0
            op = f"{name}.{pass_}"
            tier = "numpy" if not on_gpu else "cupy"
        else:
            kind = "op"
            tier = "cupy" if on_gpu else "numpy"
            op = name if pass_ == "forward" else f"{name}.backward"
            if pass_ == "forward":
                geom_f = function_geom([a.shape for a in inputs if _is_array(a)],
                                       output.shape if _is_array(output) else None,
                                       function.needs_input_grad or None)
            else:
                input_shapes = [getattr(t, "shape", ()) for t in getattr(function, "inputs", ())]
                if len(input_shapes) != len(input_grads or ()):
                    input_shapes = [g.shape if g is not None else () for g in input_grads]
                geom_f = function_geom(input_shapes, inputs[0].shape,
                                       [g is not None for g in input_grads])
            try:
                flops, moved = op_cost(name, geom_f, itemsize, pass_)
            except (KeyError, TypeError, ValueError, IndexError):
                flops = moved = None
        self.events.append(Event(op=op, tier=tier, pass_=pass_, kind=kind, shapes=shapes, dtype=dtype,
                                 itemsize=itemsize, seconds=seconds, flops=flops, bytes=moved,
                                 device="cuda" if on_gpu else "cpu", start=started - self._started,
                                 context=self.context, function=name,
                                 out_shape=tuple(output.shape) if _is_array(output) else None,
                                 out_bytes=int(output.nbytes) if _is_array(output) else None))

    # ------------------------------------------------------------------ results
    @property
    def total_seconds(self):
        return sum(e.seconds for e in self.events)

    @property
    def total_flops(self):
        return sum(e.flops or 0 for e in self.events)

    def peak(self):
        """The machine's peak for the device the ops ran on (measured once, then cached)."""
        if self._peak is None:
            device = "cuda" if any(e.device == "cuda" for e in self.events) else "cpu"
            self._peak = machine_peak(device)
        return self._peak

    def rows(self, group_by="shape"):
        """Aggregated rows (dicts), sorted by total time: group_by "shape" (op + tier + shapes),
        "op" (op + tier) or None (every call)."""
        groups = {}
        for event in self.events:
            if group_by is None:
                key = (len(groups),)
            elif group_by == "op":
                key = (event.op, event.tier, event.dtype)
            elif group_by == "shape":
                key = (event.op, event.tier, event.dtype, event.shapes)
            else:
                raise ValueError(f"group_by must be 'shape', 'op' or None, got {group_by!r}")
            groups.setdefault(key, []).append(event)
        peak = self.peak() if self.use_peak and self.events else None
        total = self.total_seconds or 1.0
        rows = []
        for events in groups.values():
            first = events[0]
            seconds = sum(e.seconds for e in events)
            flops = None if any(e.flops is None for e in events) else sum(e.flops for e in events)
            moved = None if any(e.bytes is None for e in events) else sum(e.bytes for e in events)
            shapes = sorted({e.shapes for e in events})
            row = {
                "op": first.op, "tier": first.tier, "pass": first.pass_, "kind": first.kind,
                "dtype": first.dtype, "device": first.device,
                "shapes": [list(map(list, s)) for s in shapes] if group_by != "shape" else
                          [list(s) for s in first.shapes],
                "calls": len(events), "seconds": seconds, "ms_per_call": seconds / len(events) * 1e3,
                "share_of_time": seconds / total, "flops": flops, "bytes": moved,
                "gflops_per_s": flops / seconds / 1e9 if flops is not None and seconds > 0 else None,
                "gb_per_s": moved / seconds / 1e9 if moved is not None and seconds > 0 else None,
                "intensity": flops / moved if flops is not None and moved else None,
                "share_of_peak": None,
            }
            if peak is not None and flops is not None and moved is not None:
                row["share_of_peak"] = share_of_peak(flops, moved, seconds, peak, first.itemsize or 4)
            rows.append(row)
        rows.sort(key=lambda r: r["seconds"], reverse=True)
        return rows

    def table(self, group_by="shape", limit=None):
        """A text table of rows(group_by), sorted by total time; `limit` keeps the top rows."""
        rows = self.rows(group_by)
        shown = rows[:limit] if limit else rows
        body = []
        for r in shown:
            if group_by == "shape":
                shapes = ", ".join("x".join(map(str, s)) for s in r["shapes"])
            else:
                shapes = f"{len(r['shapes'])} shape(s)"
            body.append([r["op"], r["tier"], shapes, r["calls"], f"{r['seconds'] * 1e3:.2f}",
                         f"{r['ms_per_call']:.3f}", f"{100 * r['share_of_time']:.1f}",
                         human(r["flops"]), _num(r["gflops_per_s"]), _num(r["gb_per_s"]),
                         "-" if r["share_of_peak"] is None else f"{100 * r['share_of_peak']:.1f}"])
        headers = ["op", "tier", "input shapes", "calls", "total ms", "ms/call", "% time", "FLOP",
                   "GFLOP/s", "GB/s", "% peak"]
        title = f"{len(self.events)} op calls, {self.total_seconds * 1e3:.1f} ms in ops"
        if self.wall_seconds is not None:
            title += f" ({self.wall_seconds * 1e3:.1f} ms wall)"
        if self.use_peak and self.events:
            p = self.peak()
            title += (f"; machine peak {p['gflops']:.0f} GFLOP/s (SGEMM), {p['gbps']:.1f} GB/s (copy); "
                      "% peak = share of the roofline at the op's intensity")
        if limit and len(rows) > limit:
            title += f"; top {limit} of {len(rows)} rows"
        return format_table(headers, body, align="lllrrrrrrrr", title=title)

    def to_json(self, path=None, group_by="shape", events=False):
        """JSON text of the aggregated rows (and every event when `events`), with the machine's
        peak; also written to `path` when given."""
        document = {
            "total_seconds": self.total_seconds,
            "wall_seconds": self.wall_seconds,
            "total_flops": self.total_flops,
            "peak": self.peak() if self.use_peak and self.events else None,
            "rows": self.rows(group_by),
        }
        if events:
            document["events"] = [e.as_dict() for e in self.events]
        text = json.dumps(document, indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        return text

    def __str__(self):
        return self.table()


def _num(value):
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def profile(peak=True):
    """`with aecore.profile() as prof:` records every op call; see Profiler."""
    return Profiler(peak=peak)


def profile_one_epoch(config=None, data=None, max_batches=None, quiet=True, warmup=1):
    """Train for one epoch of `config` (aecore.train's config: model, data, batch_size, ...)
    under the profiler, writing nothing to disk; returns the Profiler (print(prof.table())).

    This is what `aecore train --profile` runs. data: a Dataset to use instead of loading
    config["data"]; max_batches: stop the epoch early (quick looks, tests); warmup: training
    steps run first on the first batch and not recorded, so that Numba's JIT compilation (seconds
    per kernel on a first run) does not pass for kernel time.
    """
    from .. import random as ae_random
    from .. import train as training
    config = training.make_config(config)          # checks the device too
    ae_random.manual_seed(int(config["seed"]))
    dataset = training.load_data(config) if data is None else data
    model = training.build_model(config, dataset.images.shape[1:])
    optimizer = training.build_optimizer(config, model.parameters())
    trainer = training.Trainer(model, optimizer, dataset, config, out_dir=None, quiet=quiet)
    model = trainer.model                          # on config["device"], moved by the Trainer
    if max_batches is not None:
        trainer.loader = _Limited(trainer.loader, int(max_batches))
    if warmup:
        from ..tensor import tensor
        first = tensor(trainer.train_images[:config["batch_size"]], device=config["device"])
        for _ in range(int(warmup)):
            loss, _ = model.loss(first)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with profile() as prof:
        trainer.train_epoch(1)
    return prof


class _Limited:
    """The first `count` batches of a loader."""

    def __init__(self, loader, count):
        self.loader, self.count = loader, count

    def __len__(self):
        return min(len(self.loader), self.count)

    @property
    def last_shard(self):               # the Trainer reads which part of a batch it got
        return self.loader.last_shard

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if index >= self.count:
                return
            yield batch
