"""AdamW, the lr schedulers (aecore.optim.lr_scheduler), their text form
(aecore.optim.schedule_spec) and gradient clipping (aecore.nn.utils): each rule against its
written-out formula, against PyTorch where it is installed, and resumed exactly from a
state_dict that went through JSON."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aecore as ae
from aecore import nn, optim
from aecore.io.checkpoint import json_safe
from aecore.optim import lr_scheduler
from aecore.optim.schedule_spec import SCHEDULE_FORMS, check_schedule, make_scheduler, \
    parse_schedule

from strategies import arrays, shapes

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not ae.gpu_available(), reason="no GPU here"))]


def sgd(lr=0.1):
    return optim.SGD([nn.Parameter(np.ones(2))], lr=lr)


def lrs_over(scheduler, steps, metrics=None):
    """The lr after creation and after each of `steps` steps (plateau: with `metrics`)."""
    seen = [scheduler.get_last_lr()[0]]
    for t in range(steps):
        scheduler.step(*([] if metrics is None else [metrics[t]]))
        seen.append(scheduler.get_last_lr()[0])
    return seen


# A metric that improves, stalls and wobbles, for ReduceLROnPlateau.
METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.8, 0.8, 0.80001, 0.8, 0.8, 0.7, 0.75, 0.75, 0.75, 0.75,
           0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.59, 0.59]

SCHEDULES = {
    "step": (lr_scheduler.StepLR, dict(step_size=3, gamma=0.5)),
    "exp": (lr_scheduler.ExponentialLR, dict(gamma=0.9)),
    "cosine": (lr_scheduler.CosineAnnealingLR, dict(T_max=7, eta_min=0.01)),
    "cosine-to-zero": (lr_scheduler.CosineAnnealingLR, dict(T_max=10)),
    "lambda": (lr_scheduler.LambdaLR, dict(lr_lambda=lambda epoch: 1 / (1 + epoch))),
}
PLATEAUS = {
    "defaults": dict(),
    "patience-2": dict(patience=2, factor=0.5),
    "max-abs-cooldown": dict(mode="max", patience=1, cooldown=2, threshold_mode="abs",
                             threshold=0.01, min_lr=0.003),
    "patience-0-eps": dict(patience=0, factor=0.5, min_lr=0.02, eps=1e-3),
}


# ---------------------------------------------------------------------------- the rules
def test_step_exp_lambda_follow_their_closed_forms():
    base = 0.1
    t = np.arange(31)
    for name, closed in [("step", base * 0.5 ** (t // 3)), ("exp", base * 0.9 ** t),
                         ("lambda", base / (1 + t))]:
        make, kwargs = SCHEDULES[name]
        np.testing.assert_allclose(lrs_over(make(sgd(base), **kwargs), 30), closed, rtol=1e-12,
                                   err_msg=name)


def test_cosine_recursion_follows_the_closed_form_and_its_next_period():
    t = np.arange(51)
    closed = 0.01 + (0.1 - 0.01) * (1 + np.cos(np.pi * t / 7)) / 2    # periodic past T_max
    seen = lrs_over(lr_scheduler.CosineAnnealingLR(sgd(0.1), T_max=7, eta_min=0.01), 50)
    np.testing.assert_allclose(seen, closed, rtol=1e-10, atol=1e-15)
    assert seen[7] == pytest.approx(0.01) and seen[14] == pytest.approx(0.1)


def test_plateau_reduces_after_patience_and_rests_in_cooldown():
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd(1.0), patience=1, factor=0.5, cooldown=1)
    # metric: best, better, bad, bad -> cut; bad (cooldown: not counted), bad, bad -> cut
    seen = lrs_over(scheduler, 7, metrics=[3, 2, 2, 2, 2, 2, 2])
    assert seen == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    assert scheduler.last_epoch == 7 and scheduler.best == 2


def test_plateau_respects_min_lr_and_eps():
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd(0.1), patience=0, factor=0.1, min_lr=0.004)
    assert lrs_over(scheduler, 4, metrics=[1, 1, 1, 1])[-1] == 0.004
    tiny = lr_scheduler.ReduceLROnPlateau(sgd(1e-9), patience=0)    # a cut of <= eps: skipped
    assert lrs_over(tiny, 3, metrics=[1, 1, 1]) == [1e-9] * 4


def test_the_scheduler_writes_the_optimizers_lr_and_initial_lr():
    optimizer = sgd(0.1)
    scheduler = lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    assert optimizer.param_groups[0]["initial_lr"] == 0.1 and scheduler.last_epoch == 0
    scheduler.step()
    assert optimizer.lr == 0.05 == optimizer.param_groups[0]["lr"]
    assert scheduler.base_lrs == [0.1] and scheduler.get_last_lr() == [0.05]
    # a second scheduler keeps the first one's initial_lr (PyTorch's setdefault)
    assert lr_scheduler.ExponentialLR(optimizer, gamma=0.9).base_lrs == [0.1]


def test_last_epoch_continues_a_schedule_from_initial_lr():
    optimizer = sgd(0.05)
    with pytest.raises(ValueError, match="no 'initial_lr'.*last_epoch=-1"):
        lr_scheduler.StepLR(optimizer, step_size=2, last_epoch=3)
    optimizer.param_groups[0]["initial_lr"] = 0.2
    scheduler = lr_scheduler.LambdaLR(optimizer, lambda epoch: epoch, last_epoch=3)
    assert scheduler.last_epoch == 4 and optimizer.lr == 0.8


def test_lambda_results_are_plain_floats():
    optimizer = sgd(0.1)
    lr_scheduler.LambdaLR(optimizer, lambda epoch: np.float64(0.5))
    assert type(optimizer.lr) is float
    with pytest.raises(TypeError, match=r"lr_lambda\(0\) must return a number, got 'x'"):
        lr_scheduler.LambdaLR(sgd(), lambda epoch: "x")


def test_plateau_takes_a_tensor_metric():
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd())
    scheduler.step(ae.tensor(0.5))
    assert scheduler.best == 0.5


# ---------------------------------------------------------------------------- state_dict
def _through_json(state):
    """`state` as a checkpoint keeps it: JSON, with infinities written as null."""
    return json.loads(json.dumps(json_safe(state), allow_nan=False))


def _resume_check(make, steps, split, metrics=None):
    straight = lrs_over(make(sgd(0.1)), steps, metrics)
    first_optimizer = sgd(0.1)
    first = make(first_optimizer)
    before = lrs_over(first, split, metrics)
    optimizer_state = dict(first_optimizer.state_dict(),
                           hyper=_through_json(first_optimizer.state_dict()["hyper"]))
    scheduler_state = _through_json(first.state_dict())
    optimizer = sgd(123.0)                    # another lr: the state must bring it back
    scheduler = make(optimizer)              # PyTorch's order: scheduler, then both states
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(scheduler_state)
    after = lrs_over(scheduler, steps - split, None if metrics is None else metrics[split:])
    assert before + after[1:] == straight


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_schedule_resumes_exactly_from_its_json_state(name):
    make, kwargs = SCHEDULES[name]
    _resume_check(lambda optimizer: make(optimizer, **kwargs), steps=24, split=9)


@pytest.mark.parametrize("name", sorted(PLATEAUS))
@pytest.mark.parametrize("split", [0, 9])      # 0: before any metric (best is infinite)
def test_a_plateau_resumes_exactly_from_its_json_state(name, split):
    _resume_check(lambda optimizer: lr_scheduler.ReduceLROnPlateau(optimizer, **PLATEAUS[name]),
                  steps=24, split=split, metrics=METRICS)


def test_state_dict_is_plain_and_loads_the_settings_too():
    state = lr_scheduler.StepLR(sgd(), step_size=4, gamma=0.25).state_dict()
    assert state == {"step_size": 4, "gamma": 0.25, "base_lrs": [0.1], "last_epoch": 0,
                     "_step_count": 1, "_last_lr": [0.1]}
    other = lr_scheduler.StepLR(sgd(), step_size=2)
    other.load_state_dict(state)
    assert (other.step_size, other.gamma) == (4, 0.25)          # as PyTorch's __dict__.update
    assert lr_scheduler.LambdaLR(sgd(), abs).state_dict()["lr_lambdas"] == [None]


def test_load_state_dict_refuses_another_kind_and_bad_values_leaving_it_as_it_was():
    scheduler = lr_scheduler.ExponentialLR(sgd(), gamma=0.5)
    with pytest.raises(ValueError, match=r"not a ExponentialLR state \(missing keys \[\], "
                                         r"unknown keys \['step_size'\]\)"):
        scheduler.load_state_dict(lr_scheduler.StepLR(sgd(), step_size=2).state_dict())
    bad = dict(scheduler.state_dict(), gamma=-1.0, last_epoch=5)
    with pytest.raises(ValueError, match="gamma must be a number > 0, got -1.0"):
        scheduler.load_state_dict(bad)
    assert scheduler.gamma == 0.5 and scheduler.last_epoch == 0
    with pytest.raises(TypeError, match="last_epoch must be an integer, got 'two'"):
        scheduler.load_state_dict(dict(scheduler.state_dict(), last_epoch="two"))
    with pytest.raises(TypeError, match="expected a dict, got list"):
        scheduler.load_state_dict([])


def test_scheduler_argument_errors():
    with pytest.raises(TypeError, match="optimizer must be an aecore.optim optimizer, got str"):
        lr_scheduler.StepLR("adam", step_size=2)
    with pytest.raises(ValueError, match="step_size must be an integer >= 1, got 0"):
        lr_scheduler.StepLR(sgd(), step_size=0)
    with pytest.raises(TypeError, match="step_size must be an integer, got '10'"):
        lr_scheduler.StepLR(sgd(), step_size="10")
    with pytest.raises(ValueError, match="T_max must be an integer >= 1, got 0"):
        lr_scheduler.CosineAnnealingLR(sgd(), T_max=0)
    with pytest.raises(ValueError, match="eta_min must be a number >= 0, got -0.1"):
        lr_scheduler.CosineAnnealingLR(sgd(), T_max=3, eta_min=-0.1)
    with pytest.raises(TypeError, match="lr_lambda must be a function of the epoch, got int"):
        lr_scheduler.LambdaLR(sgd(), 3)
    with pytest.raises(ValueError, match="factor must be a number in \\[0, 1\\), got 1.0"):
        lr_scheduler.ReduceLROnPlateau(sgd(), factor=1.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'lowest'"):
        lr_scheduler.ReduceLROnPlateau(sgd(), mode="lowest")
    with pytest.raises(TypeError, match="metrics must be a number, got 'low'"):
        lr_scheduler.ReduceLROnPlateau(sgd()).step("low")


# ---------------------------------------------------------------------------- the text form
def test_schedule_texts_make_their_schedulers():
    assert parse_schedule("step:10:0.5") == (lr_scheduler.StepLR, {"step_size": 10,
                                                                    "gamma": 0.5})
    assert parse_schedule(" Exp:0.95 ") == (lr_scheduler.ExponentialLR, {"gamma": 0.95})
    assert parse_schedule("plateau") == (lr_scheduler.ReduceLROnPlateau, {})
    cosine = make_scheduler("cosine", sgd(), epochs=12)
    assert (cosine.T_max, cosine.eta_min) == (12, 0.0)
    assert make_scheduler("cosine:5:1e-4", sgd(), epochs=12).T_max == 5
    plateau = make_scheduler("plateau:3:0.5", sgd(), epochs=12)
    assert (plateau.patience, plateau.factor) == (3, 0.5)
    assert SCHEDULE_FORMS == ("step:STEP_SIZE[:GAMMA]", "exp:GAMMA", "cosine[:T_MAX[:ETA_MIN]]",
                              "plateau[:PATIENCE[:FACTOR]]")


@pytest.mark.parametrize("text, message", [
    ("warmup:3", "lr_schedule must be one of step:STEP_SIZE"),
    ("step", "must be one of"),                                     # STEP_SIZE is required
    ("exp:0.9:2", "must be one of"),                                # one number too many
    ("step:ten", "lr_schedule 'step:ten': STEP_SIZE must be an integer, got 'ten'"),
    ("cosine:5:low", "ETA_MIN must be a number, got 'low'"),
    ("step:0", "lr_schedule 'step:0': StepLR: step_size must be an integer >= 1, got 0"),
    ("plateau:2:1.5", "factor must be a number in \\[0, 1\\), got 1.5"),
])
def test_a_bad_schedule_text_is_one_clear_error(text, message):
    with pytest.raises(ValueError, match=message) as error:
        check_schedule(text, epochs=5)
    assert "\n" not in str(error.value)


def test_a_schedule_that_is_not_text_is_a_type_error():
    with pytest.raises(TypeError, match="lr_schedule must be a text"):
        parse_schedule(10)


# ---------------------------------------------------------------------------- AdamW
def adamw_reference(start, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                    amsgrad=False):
    """PyTorch's documented AdamW, one step at a time."""
    p, m, v, v_max = start.copy(), 0 * start, 0 * start, 0 * start
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * weight_decay)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        v_max = np.maximum(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - betas[1] ** t)
        p = p - lr * m / (1 - betas[0] ** t) / (np.sqrt(v_hat) + eps)
    return p


ADAMW_CASES = [dict(), dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.99)),
               dict(lr=0.01, amsgrad=True, weight_decay=0.5)]


def _adamw_run(start, grads, **hyper):
    param = nn.Parameter(start.copy())
    optimizer = optim.AdamW([param], **hyper)
    for g in grads:
        param.grad = g.copy()
        optimizer.step()
    return param.numpy()


@pytest.mark.parametrize("hyper", ADAMW_CASES)
def test_adamw_matches_the_reference_rule(hyper):
    rng = np.random.default_rng(3)
    start, grads = rng.standard_normal((3, 4)), [rng.standard_normal((3, 4)) for _ in range(6)]
    np.testing.assert_allclose(_adamw_run(start, grads, **hyper),
                               adamw_reference(start, grads, **hyper), rtol=1e-12)


def test_adamw_is_registered_with_its_defaults():
    p = nn.Parameter(np.ones(2))
    assert optim.OPTIMIZERS["adamw"] is optim.AdamW
    assert optim.AdamW([p]).hyper["weight_decay"] == 0.01
    keras = optim.AdamW([p], rule="keras").hyper                  # keras.optimizers.AdamW's
    assert (keras["weight_decay"], keras["eps"]) == (0.004, 1e-7)
    assert optim.Adam([p]).hyper["weight_decay"] == 0.0


def test_adamw_state_dict_resumes_exactly():
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(5) for _ in range(6)]
    straight = _adamw_run(np.ones(5), grads, amsgrad=True)
    resumed = nn.Parameter(np.ones(5))
    first = optim.AdamW([resumed], amsgrad=True)
    for g in grads[:3]:
        resumed.grad = g.copy()
        first.step()
    second = optim.AdamW([resumed], lr=5.0)
    second.load_state_dict(first.state_dict())
    for g in grads[3:]:
        resumed.grad = g.copy()
        second.step()
    np.testing.assert_array_equal(resumed.numpy(), straight)


def test_an_optimizer_state_carries_initial_lr():
    optimizer = sgd(0.1)
    lr_scheduler.StepLR(optimizer, step_size=1)
    state = optimizer.state_dict()
    assert state["hyper"]["initial_lr"] == 0.1
    fresh = sgd(0.3)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["initial_lr"] == 0.1
    with pytest.raises(ValueError, match="initial_lr must be >= 0"):
        fresh.load_state_dict(dict(state, hyper=dict(state["hyper"], initial_lr=-1.0)))
    assert fresh.param_groups[0]["initial_lr"] == 0.1


# ---------------------------------------------------------------------------- clipping
def _parameters_with(grads, device="cpu"):
    params = []
    for g in grads:
        p = nn.Parameter(ae.tensor(np.zeros(1) if g is None else np.zeros_like(g), device=device))
        p.grad = None if g is None else ae.tensor(g, device=device).data
        params.append(p)
    return params


def _host(p):
    return np.asarray(p.grad.get() if hasattr(p.grad, "get") else p.grad)


@given(st.lists(shapes(max_dims=2), min_size=1, max_size=3).flatmap(
    lambda shape_list: st.tuples(*[arrays(s) for s in shape_list])),
    st.sampled_from([2.0, 1.0, 3.0, math.inf]), st.floats(0.01, 10.0))
def test_clip_grad_norm_scales_to_the_max_norm_of_all_gradients_as_one(grads, norm_type,
                                                                      max_norm):
    params = _parameters_with(list(grads))
    flat = np.concatenate([g.ravel() for g in grads])
    expected_norm = np.linalg.norm(flat, ord=norm_type)
    total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(total.item(), expected_norm, rtol=1e-12)
    scale = min(1.0, max_norm / (expected_norm + 1e-6))
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, g * scale, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("device", DEVICES)
def test_clipping_works_in_place_on_the_device_and_keeps_float32(device):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((4, 3)).astype(np.float32), None,
             rng.standard_normal(7).astype(np.float32)]
    params = _parameters_with(grads, device)
    arrays_before = [p.grad for p in params]
    total = nn.utils.clip_grad_norm_(params, max_norm=0.5)
    assert total.device == params[0].device and total.dtype == np.float32
    assert params[1].grad is None
    clipped = np.concatenate([_host(p).ravel() for p in params if p.grad is not None])
    assert clipped.dtype == np.float32
    assert np.linalg.norm(clipped.astype(np.float64)) == pytest.approx(0.5, rel=1e-5)
    assert all(p.grad is a for p, a in zip(params, arrays_before))          # in place
    nn.utils.clip_grad_value_(params, clip_value=0.1)
    assert max(np.abs(_host(p)).max() for p in params if p.grad is not None) == \
        np.float32(0.1)


def test_clip_grad_value_clamps_each_element():
    g = np.array([[-3.0, 0.2], [0.5, 7.0]])
    (p,) = _parameters_with([g])
    nn.utils.clip_grad_value_(p, 0.5)                  # a single Tensor is accepted too
    np.testing.assert_array_equal(p.grad, np.clip(g, -0.5, 0.5))


def test_clip_grad_norm_edge_cases_and_errors():
    assert nn.utils.clip_grad_norm_(_parameters_with([None]), 1.0).item() == 0.0
    below = _parameters_with([np.array([0.3, 0.4])])
    assert nn.utils.clip_grad_norm_(below, 1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(below[0].grad, [0.3, 0.4])      # under max_norm: unchanged
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(_parameters_with([np.array([np.inf])]), 1.0,
                                 error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be a number >= 0, got -1"):
        nn.utils.clip_grad_norm_(below, -1)
    with pytest.raises(TypeError, match="max_norm must be a number, got '1'"):
        nn.utils.clip_grad_norm_(below, "1")
    with pytest.raises(TypeError, match="parameters must be Tensors, got ndarray at position 0"):
        nn.utils.clip_grad_norm_([np.ones(2)], 1.0)
    with pytest.raises(TypeError, match="norm_type must be a number or 'inf', got 'l2'"):
        nn.utils.clip_grad_norm_(below, 1.0, norm_type="l2")
    with pytest.raises(ValueError, match="clip_value must be a number >= 0, got -0.5"):
        nn.utils.clip_grad_value_(below, -0.5)


# ---------------------------------------------------------------------------- against PyTorch
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _torch_sgd(torch, lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.ones(2, dtype=torch.float64))], lr=lr)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_equal_pytorchs_over_50_steps(torch, name):
    make, kwargs = SCHEDULES[name]
    ours = make(sgd(0.1), **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, make.__name__)(_torch_sgd(torch), **kwargs)
    expected = [theirs.get_last_lr()[0]]
    for _ in range(50):
        theirs.optimizer.step()
        theirs.step()
        expected.append(theirs.get_last_lr()[0])
    np.testing.assert_allclose(lrs_over(ours, 50), expected, rtol=0, atol=1e-12)
    ours_state, their_state = ours.state_dict(), theirs.state_dict()
    assert {k: their_state[k] for k in ours_state if k != "lr_lambdas"} == \
        {k: v for k, v in ours_state.items() if k != "lr_lambdas"}


@pytest.mark.parametrize("name", sorted(PLATEAUS))
def test_plateaus_equal_pytorchs(torch, name):
    ours = lr_scheduler.ReduceLROnPlateau(sgd(0.1), **PLATEAUS[name])
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(_torch_sgd(torch), **PLATEAUS[name])
    expected = [theirs.get_last_lr()[0]]
    for metric in METRICS:
        theirs.step(metric)
        expected.append(theirs.get_last_lr()[0])
    assert lrs_over(ours, len(METRICS), METRICS) == expected
    their_state = theirs.state_dict()
    assert {k: their_state[k] for k in ours.state_dict()} == ours.state_dict()


@pytest.mark.parametrize("hyper", ADAMW_CASES)
def test_adamw_equals_pytorchs(torch, hyper):
    rng = np.random.default_rng(6)
    start, grads = rng.standard_normal((3, 4)), [rng.standard_normal((3, 4)) for _ in range(8)]
    param = torch.nn.Parameter(torch.from_numpy(start.copy()))
    optimizer = torch.optim.AdamW([param], **hyper)
    for g in grads:
        param.grad = torch.from_numpy(g.copy())
        optimizer.step()
    np.testing.assert_allclose(_adamw_run(start, grads, **hyper), param.detach().numpy(),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_equals_pytorchs(torch, norm_type, max_norm):
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal((3, 4)), None, rng.standard_normal(5)]
    ours = _parameters_with(grads)
    theirs = [torch.nn.Parameter(torch.zeros(1 if g is None else g.shape, dtype=torch.float64))
              for g in grads]
    for p, g in zip(theirs, grads):
        p.grad = None if g is None else torch.from_numpy(g.copy())
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-14)
    for a, b in zip(ours, theirs):
        if a.grad is not None:
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-14)
