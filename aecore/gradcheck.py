"""Check analytic gradients against central finite differences, in float64.

    gradcheck(fn, inputs)   # fn(*tensors) -> Tensor; inputs: float64 tensors

The output is reduced to a scalar with fixed random weights u (L = sum(u * fn(inputs))), which
makes a wrong Jacobian-vector product visible for any output element. Then:
- small problems (every input and the output at most `full_jacobian_limit` elements): the full
  Jacobian, column by column, analytic (one backward per output element) vs numeric;
- medium inputs (at most `elementwise_limit` elements): every element of dL/dinput, numeric
  (L(x + eps e_i) - L(x - eps e_i)) / 2 eps vs analytic;
- large inputs: `directions` random directional derivatives per input.
An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
"""

import numpy as np

from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised by gradcheck with the input, element, analytic and numeric values."""


def _evaluate(fn, inputs, weights):
    with no_grad():
        out = fn(*inputs)
    return float((out.numpy().astype(np.float64) * weights).sum())


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, full_jacobian_limit=64,
              elementwise_limit=2000, directions=8, seed=0, raise_exception=True):
    """True when every analytic gradient matches finite differences; else raise (or False)."""
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    for index, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {index} must be a Tensor, got {type(t).__name__}")
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {index} is {t.dtype}; finite differences need "
                            "float64 inputs (use tensor.double() or dtype=np.float64)")
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    for i in checked:  # perturbations write through a flat view, so the data must be contiguous
        inputs[i].data = inputs[i].xp.ascontiguousarray(inputs[i].data)
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    rng = np.random.default_rng(seed)

    with no_grad():
        probe = fn(*inputs)
    if not isinstance(probe, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(probe).__name__}")
    if probe.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned {probe.dtype}; it must compute in float64")
    weights = rng.standard_normal(probe.shape)

    def fail(message):
        if raise_exception:
            raise GradcheckError(message)
        return False

    # analytic dL/dinput with L = sum(u * out)
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    out.backward(out.xp.asarray(weights), retain_graph=True)
    analytic = {i: (np.zeros(inputs[i].shape) if inputs[i].grad is None
                    else np.asarray(_host(inputs[i].grad), dtype=np.float64)) for i in checked}

    small = probe.numel() <= full_jacobian_limit and all(inputs[i].numel() <= full_jacobian_limit for i in checked)
    if small:
        return _full_jacobian(fn, inputs, checked, out, probe.numel(), eps, atol, rtol, fail)

    for i in checked:
        t = inputs[i]
        original = t.data.copy()
        flat = t.data.reshape(-1)
        if t.numel() <= elementwise_limit:
            for element in range(t.numel()):
                numeric = _central(fn, inputs, weights, flat, element, None, eps, original, t)
                expected = analytic[i].reshape(-1)[element]
                if abs(expected - numeric) > atol + rtol * abs(numeric):
                    where = _index(element, t.shape)
                    return fail(f"gradcheck: input {i} (shape {t.shape}), element {where}: "
                                f"analytic {expected:.10g} vs numeric {numeric:.10g}")
        else:
            for d in range(directions):
                direction = rng.standard_normal(t.shape)
                numeric = _central(fn, inputs, weights, flat, None, direction, eps, original, t)
                expected = float((analytic[i] * direction).sum())
                if abs(expected - numeric) > atol + rtol * abs(numeric):
                    return fail(f"gradcheck: input {i} (shape {t.shape}), random direction {d}: "
                                f"analytic {expected:.10g} vs numeric {numeric:.10g}")
    return True


def _index(flat_index, shape):
    return tuple(int(i) for i in np.unravel_index(flat_index, shape))


def _host(array):
    return array.get() if hasattr(array, "get") else array


def _central(fn, inputs, weights, flat, element, direction, eps, original, t):
    """(L(x + eps d) - L(x - eps d)) / (2 eps) for d = e_element or `direction`."""
    xp = t.xp
    step = None if direction is None else xp.asarray(direction * eps)
    values = []
    for sign in (1, -1):
        if step is None:
            flat[element] = original.reshape(-1)[element] + sign * eps
        else:
            t.data[...] = original + sign * step
        values.append(_evaluate(fn, inputs, weights))
        t.data[...] = original
    return (values[0] - values[1]) / (2 * eps)


def _full_jacobian(fn, inputs, checked, out, out_size, eps, atol, rtol, fail):
    """Compare every d out[k] / d input[i][j]."""
    xp = out.xp
    analytic = {i: np.zeros((out_size, inputs[i].numel())) for i in checked}
    for k in range(out_size):
        for t in inputs:
            t.grad = None
        one_hot = xp.zeros(out.shape, dtype=np.float64)
        one_hot.reshape(-1)[k] = 1
        out.backward(one_hot, retain_graph=True)
        for i in checked:
            if inputs[i].grad is not None:
                analytic[i][k] = np.asarray(_host(inputs[i].grad)).reshape(-1)
    for i in checked:
        t = inputs[i]
        original = t.data.copy()
        flat = t.data.reshape(-1)
        for j in range(t.numel()):
            columns = []
            for sign in (1, -1):
                flat[j] = original.reshape(-1)[j] + sign * eps
                with no_grad():
                    columns.append(np.array(_host(fn(*inputs).data), dtype=np.float64).reshape(-1))
                t.data[...] = original
            numeric = (columns[0] - columns[1]) / (2 * eps)
            difference = np.abs(analytic[i][:, j] - numeric)
            bad = np.nonzero(difference > atol + rtol * np.abs(numeric))[0]
            if bad.size:
                k = int(bad[0])
                where = _index(j, t.shape)
                return fail(f"gradcheck: input {i} (shape {t.shape}), element {where}, output "
                            f"element {_index(k, out.shape)}: analytic "
                            f"{analytic[i][k, j]:.10g} vs numeric {numeric[k]:.10g}")
    return True
