"""Optimizers with PyTorch's update rules by default: SGD (momentum, nesterov), Adam, AdamW,
RMSprop; learning-rate schedules in aecore.optim.lr_scheduler (PyTorch's module name).

Adam and RMSprop also offer Keras' update rules exactly, with `rule="keras"`, so that a ported
Keras tutorial trains the same (after one Adam step the two rules' weights differ by about
0.7 x lr where gradients are small). The arguments keep PyTorch's names; Keras' map onto them:
    learning_rate -> lr,  beta_1, beta_2 -> betas,  epsilon -> eps,  rho -> alpha.
What differs (and the defaults `rule="keras"` switches to when they are not given):
    Adam     torch: p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps),    eps 1e-8
             keras: p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), eps 1e-7
                    (eps outside the bias correction: Kingma and Ba's "epsilon hat")
    RMSprop  torch: p -= lr * g / (sqrt(s) + eps),  lr 1e-2, alpha 0.99, eps 1e-8
             keras: p -= lr * g / sqrt(s + eps),    lr 1e-3, alpha 0.9,  eps 1e-7
                    (momentum accumulates lr * g / sqrt(s + eps) rather than g / (sqrt(s) + eps))
    weight_decay  torch: added to the gradient (L2); keras: decoupled, p -= lr * weight_decay * p
                  before the update, as every Keras 3 optimizer does.
AdamW is Adam with PyTorch's decoupled decay, p *= 1 - lr * weight_decay before the update
(Loshchilov and Hutter), default weight_decay 0.01; with rule="keras" it is Keras' AdamW
(eps 1e-7, weight_decay 0.004).

Every optimizer has one parameter group, `param_groups[0]`, the very dict of its hyper-parameters:
a scheduler writes group["lr"] there and keeps PyTorch's group["initial_lr"] beside it.

Updates are done in place on the parameters' arrays (NumPy or CuPy), outside the graph.
`state_dict()` returns plain numbers and NumPy arrays (no pickle needed to save it), and
`load_state_dict()` restores them so a resumed run continues exactly.
"""

import numpy as np

from ..backend import to_device
from ..kernels.adam import adam_update


RULES = ("torch", "keras")
# Group entries that are not constructor arguments: a scheduler adds them (PyTorch's name), and
# they travel with the optimizer's state_dict.
SCHEDULER_KEYS = ("initial_lr",)


class Optimizer:
    defaults = {}
    keras_defaults = {}   # the defaults that differ under rule="keras" (Adam, AdamW, RMSprop)
    decoupled_weight_decay = False   # PyTorch's AdamW: p *= 1 - lr * weight_decay, not L2

    def __init__(self, params, **hyper):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for index, p in enumerate(self.params):
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {index} (shape {p.shape}) "
                                 "does not require gradients")
        self.hyper = dict(self.defaults)
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown arguments {sorted(unknown)}; "
                            f"accepted: {sorted(self.defaults)}")
        if hyper.get("rule", self.defaults.get("rule")) == "keras":
            self.hyper.update(self.keras_defaults)
        self.hyper.update(hyper)
        self._validate()
        self.step_count = 0
        self.state = [dict() for _ in self.params]  # per parameter: name -> array

    def _validate(self):
        if not self.hyper["lr"] >= 0:
            raise ValueError(f"lr must be >= 0, got {self.hyper['lr']!r}")
        if self.hyper.get("weight_decay", 0) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.hyper['weight_decay']!r}")
        if self.hyper.get("rule", "torch") not in RULES:
            raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}, got "
                             f"{self.hyper['rule']!r}")
        if not self.hyper.get("initial_lr", 0) >= 0:
            raise ValueError(f"initial_lr must be >= 0, got {self.hyper['initial_lr']!r}")

    @property
    def lr(self):
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value):
        self.hyper["lr"] = float(value)

    @property
    def param_groups(self):
        """PyTorch-style view: one group, the hyper-parameter dict itself, so a scheduler's
        group["lr"] = ... is the lr the next step uses."""
        return [self.hyper]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            grad = p.grad
            decay = self.hyper.get("weight_decay", 0)
            if decay and self.hyper.get("rule") == "keras":
                p.data -= (self.hyper["lr"] * decay) * p.data   # decoupled, before the update
            elif decay and self.decoupled_weight_decay:
                p.data *= 1 - self.hyper["lr"] * decay          # PyTorch's AdamW, before it
            elif decay:
                grad = grad + decay * p.data
            self._update(p, grad, state)

    def _update(self, p, grad, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def _buffer(self, state, name, like):
        if name not in state:
            state[name] = p_zeros(like)
        return state[name]

    def state_dict(self):
        return {
            "type": type(self).__name__,
            "hyper": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hyper.items()},
            "step_count": self.step_count,
            "state": [{name: np.array(to_device(a, "cpu"), copy=True) for name, a in s.items()}
                      for s in self.state],
        }

    def load_state_dict(self, state_dict):
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"load_state_dict: the state is from {state_dict.get('type')!r}, "
                             f"not {type(self).__name__}")
        if len(state_dict["state"]) != len(self.params):
            raise ValueError(f"load_state_dict: the state has {len(state_dict['state'])} "
                             f"parameters, this optimizer has {len(self.params)}")
        for index, (p, saved) in enumerate(zip(self.params, state_dict["state"])):
            for name, array in saved.items():
                if tuple(array.shape) != p.shape:
                    raise ValueError(f"load_state_dict: buffer {name!r} of parameter {index} has "
                                     f"shape {tuple(array.shape)}, the parameter {p.shape}")
        saved_hyper = {k: (tuple(v) if isinstance(v, list) else v)
                       for k, v in state_dict["hyper"].items()}
        unknown = set(saved_hyper) - set(self.defaults) - set(SCHEDULER_KEYS)
        if unknown:
            raise ValueError(f"load_state_dict: unknown hyper-parameters {sorted(unknown)} for "
                             f"{type(self).__name__}")
        previous = dict(self.hyper)
        self.hyper.update(saved_hyper)
        try:
            self._validate()
        except ValueError:
            self.hyper = previous       # a refused state leaves the optimizer as it was
            raise
        self.step_count = int(state_dict["step_count"])
        self.state = [{name: p.xp.asarray(array, dtype=p.dtype).copy() for name, array in saved.items()}
                      for p, saved in zip(self.params, state_dict["state"])]


def p_zeros(like):
    return like.xp.zeros_like(like.data)


class SGD(Optimizer):
    """p -= lr * g, with optional momentum (buf = momentum*buf + (1-dampening)*g) and nesterov."""

    defaults = dict(lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0)

    def _validate(self):
        super()._validate()
        if self.hyper["momentum"] < 0:
            raise ValueError(f"momentum must be >= 0, got {self.hyper['momentum']!r}")
        if self.hyper["nesterov"] and (self.hyper["momentum"] <= 0 or self.hyper["dampening"] != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, p, grad, state):
        h = self.hyper
        if h["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                buf = state["momentum_buffer"]
                buf *= h["momentum"]
                buf += (1 - h["dampening"]) * grad
            buf = state["momentum_buffer"]
            grad = grad + h["momentum"] * buf if h["nesterov"] else buf
        p.data -= h["lr"] * grad


class Adam(Optimizer):
    """Adam with bias correction; PyTorch's form by default, Keras' with rule="keras" (see the
    module docstring). amsgrad: divide by the running maximum of v instead of v."""

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                    rule="torch")
    keras_defaults = dict(eps=1e-7)

    def _validate(self):
        super()._validate()
        b1, b2 = self.hyper["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {self.hyper['betas']!r}")
        if self.hyper["eps"] < 0:
            raise ValueError(f"eps must be >= 0, got {self.hyper['eps']!r}")

    def _update(self, p, grad, state):
        h = self.hyper
        m = self._buffer(state, "exp_avg", p)
        v = self._buffer(state, "exp_avg_sq", p)
        v_max = self._buffer(state, "max_exp_avg_sq", p) if h["amsgrad"] else None
        # in place on p.data, m, v (and v_max): one fused pass for NumPy arrays (kernels/adam.py)
        adam_update(p.xp, p.data, grad, m, v, v_max, h["lr"], h["betas"], h["eps"],
                    self.step_count, h["rule"])


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): p *= 1 - lr * weight_decay, then the
    Adam update of the gradient alone, so the decay is not rescaled by Adam's denominator.
    rule="keras" gives Keras' AdamW (p -= lr * weight_decay * p, eps outside the correction)."""

    defaults = dict(Adam.defaults, weight_decay=1e-2)
    keras_defaults = dict(Adam.keras_defaults, weight_decay=4e-3)
    decoupled_weight_decay = True


class RMSprop(Optimizer):
    """RMSprop: square_avg = alpha * square_avg + (1 - alpha) * g^2, then PyTorch's
    p -= lr * g / (sqrt(square_avg) + eps), or Keras' p -= lr * g / sqrt(square_avg + eps) with
    rule="keras" (see the module docstring). centered: subtract the squared mean gradient."""

    defaults = dict(lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0,
                    rule="torch")
    keras_defaults = dict(lr=1e-3, alpha=0.9, eps=1e-7)

    def _validate(self):
        super()._validate()
        if not 0 <= self.hyper["alpha"] < 1:
            raise ValueError(f"alpha must be in [0, 1), got {self.hyper['alpha']!r}")
        if self.hyper["momentum"] < 0:
            raise ValueError(f"momentum must be >= 0, got {self.hyper['momentum']!r}")

    def _update(self, p, grad, state):
        h = self.hyper
        xp = p.xp
        square_avg = self._buffer(state, "square_avg", p)
        square_avg *= h["alpha"]
        square_avg += (1 - h["alpha"]) * grad * grad
        variance = square_avg
        if h["centered"]:
            grad_avg = self._buffer(state, "grad_avg", p)
            grad_avg *= h["alpha"]
            grad_avg += (1 - h["alpha"]) * grad
            variance = square_avg - grad_avg * grad_avg
        if h["rule"] == "keras":
            step = h["lr"] * grad / xp.sqrt(variance + h["eps"])     # what momentum accumulates
        else:
            step = grad / (xp.sqrt(variance) + h["eps"])
        if h["momentum"] > 0:
            buf = self._buffer(state, "momentum_buffer", p)
            buf *= h["momentum"]
            buf += step
            step = buf
        p.data -= step if h["rule"] == "keras" else h["lr"] * step


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}

from . import lr_scheduler  # noqa: E402,F401  (aecore.optim.lr_scheduler, as in PyTorch)
