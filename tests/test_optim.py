"""Tests for tinygrad_llm.optim: update rules against torch.optim, clipping, the schedule, state_dict, errors."""
import math

import numpy as np
import pytest

from tinygrad_llm import Tensor
from tinygrad_llm.optim import SGD, Adam, AdamW, clip_grad_norm_, set_lr, warmup_cosine_lr

from conftest import assert_raises_naming

SHAPES = [(4, 3), (3,), (2, 2, 2)]


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True) for shape in SHAPES]


def random_grads(rng, step):
    """Deterministic gradients; on every third step parameter 1 has none (it must then be skipped)."""
    return [None if (i == 1 and step % 3 == 2) else rng.standard_normal(shape) for i, shape in enumerate(SHAPES)]


def set_grads(params, grads, torch_params=()):
    """Each parameter's gradient (None: none), and the same numbers to its twin among torch_params."""
    for p, g in zip(params, grads):
        p.grad = None if g is None else Tensor(g.copy())
    for t, g in zip(torch_params, grads):
        t.grad = None if g is None else pytest.importorskip("torch").tensor(g)


def torch_twins(torch, params):
    """torch leaves holding the numbers of `params`."""
    return [torch.tensor(p.data.copy(), requires_grad=True) for p in params]


def compare_with_torch(make_ours, make_torch, steps=20, lrs=None):
    """Run our optimizer and torch's on the same parameters and gradients; params must agree at every step."""
    torch = pytest.importorskip("torch")
    ours = make_params()
    theirs = torch_twins(torch, ours)
    opt, topt = make_ours(ours), make_torch(theirs)
    rng = np.random.default_rng(1)
    for step in range(steps):
        if lrs is not None:  # a schedule: change lr between steps on both sides
            set_lr(opt, lrs[step])
            for group in topt.param_groups:
                group["lr"] = lrs[step]
        set_grads(ours, random_grads(rng, step), theirs)
        opt.step()
        topt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=0, err_msg=f"step {step}")
    # the updates did something: the parameters moved away from their start
    assert not np.allclose(ours[0].data, make_params()[0].data)


def two_groups(params, **second):
    return [{"params": [params[0], params[2]], "weight_decay": 0.1}, {"params": [params[1]], **second}]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_matches_torch(weight_decay):
    torch = pytest.importorskip("torch")
    compare_with_torch(lambda ps: Adam(ps, lr=0.01, weight_decay=weight_decay),
                       lambda ts: torch.optim.Adam(ts, lr=0.01, weight_decay=weight_decay))


def test_adam_groups_and_schedule_match_torch():
    torch = pytest.importorskip("torch")
    lrs = [warmup_cosine_lr(s, max_lr=0.05, min_lr=0.005, warmup_steps=5, decay_steps=15) for s in range(20)]
    compare_with_torch(lambda ps: Adam(two_groups(ps, betas=(0.8, 0.99), eps=1e-6), weight_decay=0.0),
                       lambda ts: torch.optim.Adam(two_groups(ts, betas=(0.8, 0.99), eps=1e-6), weight_decay=0.0),
                       lrs=lrs)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    compare_with_torch(lambda ps: AdamW(ps, lr=0.02, weight_decay=0.1),
                       lambda ts: torch.optim.AdamW(ts, lr=0.02, weight_decay=0.1))


def test_adamw_groups_match_torch():
    torch = pytest.importorskip("torch")
    compare_with_torch(lambda ps: AdamW(two_groups(ps, weight_decay=0.0, lr=0.05), lr=0.01, betas=(0.85, 0.95)),
                       lambda ts: torch.optim.AdamW(two_groups(ts, weight_decay=0.0, lr=0.05), lr=0.01,
                                                    betas=(0.85, 0.95)))


@pytest.mark.parametrize("options", [
    dict(momentum=0.0),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.8, nesterov=True, weight_decay=0.05),
])
def test_sgd_matches_torch(options):
    torch = pytest.importorskip("torch")
    compare_with_torch(lambda ps: SGD(ps, lr=0.05, **options), lambda ts: torch.optim.SGD(ts, lr=0.05, **options))


def test_sgd_groups_match_torch():
    torch = pytest.importorskip("torch")
    compare_with_torch(lambda ps: SGD(two_groups(ps, momentum=0.5), lr=0.05, momentum=0.9, nesterov=False),
                       lambda ts: torch.optim.SGD(two_groups(ts, momentum=0.5), lr=0.05, momentum=0.9))


def test_adamw_trains_with_backward_in_place_and_keeps_dtype():
    """End to end with our autograd: a float32 least-squares fit; parameters are updated in place."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((32, 5)).astype(np.float32))
    y = Tensor((x.data @ rng.standard_normal((5, 1))).astype(np.float32))
    w = Tensor(np.zeros((5, 1), np.float32), requires_grad=True)
    array = w.data
    opt = AdamW([w], lr=0.1, weight_decay=0.0)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert w.data is array and w.dtype == np.float32
    assert opt.state[id(w)]["exp_avg"].dtype == np.float32
    assert losses[-1] < 1e-3 * losses[0]


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1), lambda p: AdamW(p, lr=0.1)])
def test_a_step_between_forward_and_backward_is_refused_naming_the_op(make):
    """The graph saved w for its backward; a step changes w in place, so that backward would compute dL/dx from
    the new weights: refused, as PyTorch refuses it ("modified by an inplace operation")."""
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    optimizer = make([w])
    (x @ w).sum().backward()
    loss = (x @ w).sum()                                 # a new graph, saving w as it is now
    optimizer.step()                                     # w changes under it
    with pytest.raises(RuntimeError, match=r"matmul.backward: an array this op saved .* changed in place after the forward"):
        loss.backward()
    optimizer.zero_grad()
    (x @ w).sum().backward()                             # a graph built after the step is fine
    assert w.grad is not None


@pytest.mark.parametrize("fraction", [0.2, 0.9, 1.5])
def test_clip_grad_norm_matches_torch(fraction):
    """max_norm = fraction * the gradients' norm: well below it, just below it, and above it (no clipping)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(shape) for shape in SHAPES]
    expected_norm = math.sqrt(sum((g ** 2).sum() for g in grads))
    max_norm = fraction * expected_norm
    ours = make_params()
    theirs = torch_twins(torch, ours)
    set_grads(ours, grads, theirs)
    norm = clip_grad_norm_(ours, max_norm=max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(theirs, max_norm=max_norm)
    assert isinstance(norm, Tensor) and norm.shape == () and norm.dtype == np.float64     # as torch's: a 0-d tensor
    norm = float(norm)
    assert norm == pytest.approx(tnorm.item(), rel=1e-12)
    assert norm == pytest.approx(expected_norm, rel=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12, atol=0)
    clipped = math.sqrt(sum((p.grad.data ** 2).sum() for p in ours))
    assert clipped == pytest.approx(min(max_norm, expected_norm), rel=1e-5)


def test_clip_grad_norm_leaves_small_grads_and_skips_missing():
    rng = np.random.default_rng(3)
    params = make_params()
    grads = [0.01 * rng.standard_normal(shape) for shape in SHAPES]
    grads[1] = None
    set_grads(params, grads)
    norm = clip_grad_norm_(params, max_norm=1.0).item()
    assert norm == pytest.approx(math.sqrt((grads[0] ** 2).sum() + (grads[2] ** 2).sum()), rel=1e-12)
    assert params[1].grad is None
    for p, g in zip([params[0], params[2]], [grads[0], grads[2]]):
        assert np.array_equal(p.grad.data, g)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(params, max_norm=0.0)


def test_warmup_cosine_lr():
    kw = dict(max_lr=1.0, min_lr=0.1, warmup_steps=10, decay_steps=110)
    assert warmup_cosine_lr(0, **kw) == pytest.approx(1 / 11)
    assert warmup_cosine_lr(9, **kw) == pytest.approx(10 / 11)
    assert warmup_cosine_lr(10, **kw) == pytest.approx(1.0)  # warmup end: the peak
    assert warmup_cosine_lr(60, **kw) == pytest.approx(0.55)  # midpoint: halfway between max and min
    assert warmup_cosine_lr(110, **kw) == pytest.approx(0.1)  # decay end
    assert warmup_cosine_lr(111, **kw) == 0.1 and warmup_cosine_lr(10_000, **kw) == 0.1
    warmup = [warmup_cosine_lr(s, **kw) for s in range(11)]
    assert all(a < b for a, b in zip(warmup, warmup[1:]))
    decay = [warmup_cosine_lr(s, **kw) for s in range(10, 111)]
    assert all(a > b for a, b in zip(decay, decay[1:]))


@pytest.mark.parametrize("step, kw, match", [
    (-1, {}, "step"),
    (0, dict(min_lr=2.0), "min_lr"),
    (0, dict(warmup_steps=-1), "warmup_steps"),
    (0, dict(decay_steps=10), "decay_steps"),
])
def test_warmup_cosine_lr_errors(step, kw, match):
    args = {**dict(max_lr=1.0, min_lr=0.1, warmup_steps=10, decay_steps=110), **kw}
    with pytest.raises(ValueError, match=match):
        warmup_cosine_lr(step, **args)


def test_set_lr():
    params = make_params()
    opt = AdamW(two_groups(params, lr=0.5), lr=0.1)
    set_lr(opt, 0.02)
    assert [group["lr"] for group in opt.param_groups] == [0.02, 0.02]
    with pytest.raises(ValueError, match="learning rate"):
        set_lr(opt, -1.0)


@pytest.mark.parametrize("make", [
    lambda ps: AdamW(two_groups(ps, weight_decay=0.0), lr=0.01),
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
])
def test_state_dict_round_trip_continues_identically(make):
    rng = np.random.default_rng(4)
    grads = [random_grads(rng, step) for step in range(10)]
    params = make_params()
    opt = make(params)
    for step in range(5):
        set_grads(params, grads[step])
        opt.step()
    set_lr(opt, 0.003)
    saved = opt.state_dict()
    snapshot = [p.data.copy() for p in params]
    for step in range(5, 10):  # the original goes on; the snapshot must not change with it
        set_grads(params, grads[step])
        opt.step()

    restored = [Tensor(a.copy(), requires_grad=True) for a in snapshot]
    opt2 = make(restored)
    opt2.load_state_dict(saved)
    assert [g["lr"] for g in opt2.param_groups] == [0.003] * len(opt2.param_groups)
    for step in range(5, 10):
        set_grads(restored, grads[step])
        opt2.step()
    for p, q in zip(params, restored):
        assert np.array_equal(p.data, q.data)


def test_state_dict_contents_and_skipped_params():
    params = make_params()
    opt = Adam(params, lr=0.1)
    set_grads(params, [np.ones(SHAPES[0]), None, np.ones(SHAPES[2])])
    before = params[1].data.copy()
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 2]  # parameter 1 had no grad: no state, no step counted
    assert sd["state"][0]["step"] == 1 and isinstance(sd["state"][0]["exp_avg"], Tensor)
    assert sd["param_groups"][0]["params"] == [0, 1, 2] and sd["param_groups"][0]["lr"] == 0.1
    assert np.array_equal(params[1].data, before)


def test_state_dict_is_pytorchs_key_for_key(torch):
    """The groups' options in PyTorch's order (a group's own keys, then the defaults), Adam's step a float32 0-d
    tensor and its moments tensors: what torch.save writes of it is what PyTorch's optimizer would write."""
    ours, theirs = Tensor(np.ones(2), requires_grad=True), torch.ones(2, dtype=torch.float64, requires_grad=True)
    for ours_optimizer, their_optimizer in [
            (AdamW([{"params": [ours], "weight_decay": 0.0}], lr=0.1),
             torch.optim.AdamW([{"params": [theirs], "weight_decay": 0.0}], lr=0.1)),
            (SGD([ours], lr=0.1, momentum=0.9), torch.optim.SGD([theirs], lr=0.1, momentum=0.9))]:
        ours.grad, theirs.grad = Tensor(np.ones(2)), torch.ones(2, dtype=torch.float64)
        ours_optimizer.step()
        their_optimizer.step()
        ours_state, their_state = ours_optimizer.state_dict(), their_optimizer.state_dict()
        assert ours_state["param_groups"] == their_state["param_groups"]
        assert list(ours_state["param_groups"][0]) == list(their_state["param_groups"][0])
        assert list(ours_state["state"][0]) == list(their_state["state"][0])
        for key, value in their_state["state"][0].items():
            assert isinstance(ours_state["state"][0][key], Tensor) and ours_state["state"][0][key].shape == value.shape
            assert ours_state["state"][0][key].dtype == np.dtype(str(value.dtype).replace("torch.", "")), key


def test_load_state_dict_mismatch_errors():
    params = make_params()
    opt = Adam(params)
    set_grads(params, [np.ones(s) for s in SHAPES])
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="holds 3 parameters"):
        Adam(make_params()[:2]).load_state_dict(sd)
    other = [Tensor(np.zeros(s), requires_grad=True) for s in [(4, 3), (5,), (2, 2, 2)]]
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(5,\)"):
        Adam(other).load_state_dict(sd)
    with pytest.raises(ValueError, match="betas"):
        SGD(make_params(), lr=0.1).load_state_dict(sd)
    untouched = Adam(other)
    with pytest.raises(ValueError):
        untouched.load_state_dict(sd)
    assert untouched.state == {}  # a failed load changes nothing


def test_zero_grad():
    params = make_params()
    opt = SGD(params, lr=0.1)
    set_grads(params, [np.ones(s) for s in SHAPES])
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    before = [p.data.copy() for p in params]
    opt.step()  # nothing has a gradient: nothing moves
    assert all(np.array_equal(p.data, b) for p, b in zip(params, before))


def test_constructor_errors():
    params = make_params()
    with pytest.raises(ValueError, match="Adam: .*does not require grad"):
        Adam([Tensor(np.zeros(3))])
    with pytest.raises(ValueError, match="AdamW: .*more than once"):
        AdamW([{"params": params[:2]}, {"params": params[1:]}])
    with pytest.raises(ValueError, match="SGD: .*more than once"):
        SGD([params[0], params[0]], lr=0.1)
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="AdamW: .*unknown option.*'momentum'"):
        AdamW([{"params": params, "momentum": 0.9}])
    with pytest.raises(TypeError, match="Adam: .*ndarray, not a Tensor"):
        Adam([np.zeros(3)])
    with pytest.raises(ValueError, match="Adam: learning rate"):
        Adam(params, lr=-0.1)
    with pytest.raises(ValueError, match="SGD: nesterov"):
        SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Adam: .*not a leaf"):
        Adam([params[0] * 2])


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("make, words", [
    (lambda ps: SGD(ps, lr=NAN), ["SGD: learning rate lr", "nan"]),          # PyTorch lets this one through
    (lambda ps: SGD(ps, lr=INF), ["SGD: learning rate lr", "inf"]),
    (lambda ps: SGD(ps, lr=-0.1), ["SGD: learning rate lr", ">= 0", "-0.1"]),
    (lambda ps: SGD(ps, lr=0.1, momentum=NAN), ["SGD: momentum", "nan"]),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.9), ["SGD: momentum", "-0.9"]),
    (lambda ps: SGD(ps, lr=0.1, dampening=INF), ["SGD: dampening", "inf"]),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=NAN), ["SGD: weight_decay", "nan"]),
    (lambda ps: Adam(ps, lr=NAN), ["Adam: learning rate lr", "nan"]),
    (lambda ps: Adam(ps, lr=INF), ["Adam: learning rate lr", "inf"]),
    (lambda ps: Adam(ps, eps=INF), ["Adam: eps", "inf"]),
    (lambda ps: Adam(ps, eps=-1e-8), ["Adam: eps", "-1e-08"]),
    (lambda ps: Adam(ps, betas=(NAN, 0.999)), ["Adam: betas[0]", "nan"]),
    (lambda ps: Adam(ps, betas=(0.9, 1.0)), ["Adam: betas[1]", "< 1", "1.0"]),
    (lambda ps: Adam(ps, weight_decay=-0.1), ["Adam: weight_decay", "-0.1"]),
    (lambda ps: AdamW(ps, weight_decay=INF), ["AdamW: weight_decay", "inf"]),
    (lambda ps: AdamW(ps, lr="3e-4"), ["AdamW: learning rate lr", "'3e-4'"]),
    (lambda ps: AdamW(two_groups(ps, lr=NAN), lr=1e-3), ["AdamW: parameter group 1: learning rate lr", "nan"]),
    (lambda ps: AdamW([{"params": ps, "betas": (0.9,)}]), ["AdamW: betas must be a pair", "(0.9,)"]),
    (lambda ps: SGD(two_groups(ps, momentum=INF), lr=0.1), ["SGD: parameter group 1: momentum", "inf"]),
])
def test_bad_hyperparameters_are_refused_naming_the_optimizer_and_the_option(make, words):
    assert_raises_naming(lambda: make(make_params()), ValueError, words)


def test_a_bad_hyperparameter_given_later_is_refused_before_anything_moves():
    """A group's lr made NaN between steps (by hand or by a scheduler), a state_dict holding a bad option, and
    set_lr(nan): each refused, naming the optimizer (the group) and the option, with nothing changed."""
    from tinygrad_llm.optim import lr_scheduler
    params = make_params()
    opt = AdamW(two_groups(params), lr=0.01)
    set_grads(params, [np.ones(s) for s in SHAPES])
    before = [p.data.copy() for p in params]
    opt.param_groups[1]["lr"] = NAN
    assert_raises_naming(opt.step, ValueError, ["AdamW: parameter group 1: learning rate lr", "nan"])
    assert all(np.array_equal(p.data, b) for p, b in zip(params, before)) and opt.state == {}
    opt.param_groups[1]["lr"] = 0.01
    saved = opt.state_dict()
    saved["param_groups"][0]["eps"] = INF
    assert_raises_naming(lambda: opt.load_state_dict(saved), ValueError,
                         ["AdamW.load_state_dict: group 0 of the state_dict: eps", "inf"])
    assert opt.param_groups[0]["eps"] == 1e-8
    assert_raises_naming(lambda: set_lr(opt, NAN), ValueError, ["set_lr: learning rate lr", "nan"])
    assert [group["lr"] for group in opt.param_groups] == [0.01, 0.01]
    lr_scheduler.LambdaLR(opt, lambda step: INF)
    assert_raises_naming(opt.step, ValueError, ["AdamW: parameter group 0: learning rate lr", "inf"])
    assert all(np.array_equal(p.data, b) for p, b in zip(params, before))


def test_a_frozen_parameter_is_accepted_and_left_alone():
    from tinygrad_llm.nn import Parameter
    frozen, live = Parameter(np.ones(3), requires_grad=False), Parameter(np.ones(3))
    opt = AdamW([frozen, live], lr=0.1)
    live.grad = Tensor(np.ones(3))
    opt.step()
    assert np.array_equal(frozen.data, np.ones(3)) and not np.array_equal(live.data, np.ones(3))


# ---------------------------------------------------------------- optim.lr_scheduler against torch.optim.lr_scheduler

SCHEDULES = {
    "lambda": lambda m, opt: m.LambdaLR(opt, lambda step: 0.97 ** step),
    "lambda-per-group": lambda m, opt: m.LambdaLR(opt, [lambda step: 1 / (1 + step), lambda step: 0.5 + step % 3]),
    "linear": lambda m, opt: m.LinearLR(opt, start_factor=0.1, end_factor=0.9, total_iters=37),
    "cosine": lambda m, opt: m.CosineAnnealingLR(opt, T_max=1000, eta_min=1e-4),
    "cosine-past-T_max": lambda m, opt: m.CosineAnnealingLR(opt, T_max=170),     # runs 3000 steps: back up, down
    "warmup-cosine": lambda m, opt: m.SequentialLR(
        opt, [m.LinearLR(opt, start_factor=0.01, total_iters=100), m.CosineAnnealingLR(opt, T_max=2900)],
        milestones=[100]),
    "three-phases": lambda m, opt: m.SequentialLR(
        opt, [m.LambdaLR(opt, lambda step: (step + 1) / 10), m.LinearLR(opt, start_factor=1.0, end_factor=0.5,
                                                                          total_iters=40),
              m.CosineAnnealingLR(opt, T_max=500, eta_min=1e-3)], milestones=[10, 500]),
}


def scheduled_pair(torch, name):
    """Our SGD and torch's over two parameter groups (lr 0.1 and 0.03), each with the schedule `name`."""
    ours = make_params()
    theirs = torch_twins(torch, ours)
    from tinygrad_llm.optim import lr_scheduler
    opt = SGD(two_groups(ours, lr=0.03), lr=0.1)
    topt = torch.optim.SGD(two_groups(theirs, lr=0.03), lr=0.1)
    return ((ours, opt, SCHEDULES[name](lr_scheduler, opt)),
            (theirs, topt, SCHEDULES[name](torch.optim.lr_scheduler, topt)))


@pytest.mark.parametrize("name", SCHEDULES)
def test_lr_schedulers_follow_torch_for_3000_steps(name, torch):
    (ours, opt, scheduler), (theirs, topt, tscheduler) = scheduled_pair(torch, name)
    rng = np.random.default_rng(0)
    ours_lrs, torch_lrs = [scheduler.get_last_lr()], [tscheduler.get_last_lr()]
    for step in range(3000):
        grads = [rng.standard_normal(shape) for shape in SHAPES]
        set_grads(ours, grads, theirs)
        opt.step()
        topt.step()
        scheduler.step()
        tscheduler.step()
        ours_lrs.append(scheduler.get_last_lr())
        torch_lrs.append(tscheduler.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == ours_lrs[-1]
    ours_lrs, torch_lrs = np.array(ours_lrs), np.array(torch_lrs)           # (3001 steps, 2 groups)
    np.testing.assert_allclose(ours_lrs, torch_lrs, rtol=1e-10, atol=1e-15)
    assert len(np.unique(ours_lrs[:, 0])) > 10                               # the schedule did change the lr
    for p, t in zip(ours, theirs):                                           # and SGD followed it
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_lr_scheduler_state_dict_resumes_the_schedule(torch):
    from tinygrad_llm.optim import lr_scheduler
    make = SCHEDULES["warmup-cosine"]
    opt = SGD(make_params(), lr=0.1)
    scheduler = make(lr_scheduler, opt)
    for _ in range(150):                                                     # past the milestone
        scheduler.step()
    saved_opt, saved = opt.state_dict(), scheduler.state_dict()
    assert saved["last_epoch"] == 150 and "optimizer" not in saved
    expected = []
    for _ in range(10):
        scheduler.step()
        expected.append(scheduler.get_last_lr())

    opt2 = SGD(make_params(), lr=0.1)
    resumed = make(lr_scheduler, opt2)                                       # rebuilt as PyTorch asks, then loaded
    opt2.load_state_dict(saved_opt)                                          # the groups keep "initial_lr"
    resumed.load_state_dict(saved)
    assert resumed.get_last_lr() == [g["lr"] for g in opt2.param_groups] == saved["_last_lr"]
    again = []
    for _ in range(10):
        resumed.step()
        again.append(resumed.get_last_lr())
    assert again == expected
    resumed_by_epoch = lr_scheduler.CosineAnnealingLR(opt2, T_max=50, last_epoch=7)   # "initial_lr" is there now
    assert resumed_by_epoch.last_epoch == 8


def test_lr_scheduler_module_is_reached_as_pytorch_spells_it():
    import tinygrad_llm.optim.lr_scheduler as by_import
    from tinygrad_llm import optim
    from tinygrad_llm.optim.lr_scheduler import CosineAnnealingLR
    assert optim.lr_scheduler is by_import and by_import.CosineAnnealingLR is CosineAnnealingLR


def scheduler_error(make):
    from tinygrad_llm.optim import lr_scheduler
    return lambda: make(lr_scheduler, SGD(make_params(), lr=0.1))


@pytest.mark.parametrize("make, error, match", [
    (lambda m, opt: m.LambdaLR(opt, [lambda s: 1, lambda s: 1]), ValueError, "LambdaLR: got 2 lr_lambdas for 1"),
    (lambda m, opt: m.LambdaLR(opt, 0.5), TypeError, "LambdaLR: lr_lambda must be a function"),
    (lambda m, opt: m.LinearLR(opt, start_factor=0), ValueError, r"LinearLR: start_factor .*got 0"),
    (lambda m, opt: m.LinearLR(opt, end_factor=1.5), ValueError, r"LinearLR: end_factor .*got 1.5"),
    (lambda m, opt: m.LinearLR(opt, total_iters=0), ValueError, "LinearLR: total_iters .*got 0"),
    (lambda m, opt: m.CosineAnnealingLR(opt, T_max=0), ValueError, "CosineAnnealingLR: T_max .*got 0"),
    (lambda m, opt: m.CosineAnnealingLR(opt, T_max=10, eta_min=-1), ValueError, "CosineAnnealingLR: eta_min"),
    (lambda m, opt: m.CosineAnnealingLR(opt, T_max=10, last_epoch=3), KeyError, "initial_lr"),
    (lambda m, opt: m.CosineAnnealingLR([opt], T_max=10), TypeError, "CosineAnnealingLR: expected an optimizer"),
    (lambda m, opt: m.SequentialLR(opt, [], []), ValueError, "SequentialLR: got no schedulers"),
    (lambda m, opt: m.SequentialLR(opt, [m.LinearLR(opt), m.LinearLR(opt)], [5, 6]), ValueError,
     r"SequentialLR: 2 schedulers need 1 milestone\(s\), got \[5, 6\]"),
    (lambda m, opt: m.SequentialLR(opt, [m.LinearLR(opt), m.LinearLR(opt), m.LinearLR(opt)], [5, 5]), ValueError,
     r"SequentialLR: milestones must be increasing .*\[5, 5\]"),
    (lambda m, opt: m.SequentialLR(opt, [m.LinearLR(SGD(make_params(), lr=1.0))], []), ValueError,
     r"SequentialLR: scheduler 0 \(LinearLR\) belongs to another optimizer"),
    (lambda m, opt: m.LinearLR(opt).load_state_dict({"last_epoch": 3}), KeyError,
     "LinearLR.load_state_dict: keys"),
])
def test_lr_scheduler_errors_name_the_scheduler_and_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        scheduler_error(make)()


# ---------------------------------------------------------------- PyTorch 2's keywords, zero_grad, add_param_group

@pytest.mark.parametrize("kind, options", [
    ("SGD", dict(lr=0.05, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, maximize=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.02, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.02, foreach=True)),                 # implementation only: the same numbers
    ("AdamW", dict(lr=0.02, fused=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, foreach=False, fused=None)),
])
def test_pytorch_2_keywords_give_torchs_numbers(kind, options):
    torch = pytest.importorskip("torch")
    ours = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[kind]
    compare_with_torch(lambda ps: ours(ps, **options),
                       lambda ts: getattr(torch.optim, kind)(ts, **{k: v for k, v in options.items() if k != "fused"}))


@pytest.mark.parametrize("kind, options", [("SGD", dict(momentum=0.9, nesterov=True)), ("Adam", dict(amsgrad=True)),
                                           ("AdamW", dict(fused=False))])
def test_parameter_groups_hold_torchs_options(kind, options, torch):
    """Every key of a group is one PyTorch's group holds, with its value (SGD's default lr is PyTorch 2's 1e-3)."""
    ours = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[kind](make_params(), **options)
    theirs = getattr(torch.optim, kind)([torch.zeros(2, requires_grad=True)], **options)
    assert {k: v for k, v in ours.param_groups[0].items() if k != "params"} == \
        {k: v for k, v in theirs.param_groups[0].items() if k != "params"}


@pytest.mark.parametrize("make, error, words", [
    (lambda ps: AdamW(ps, foreach=True, fused=True), RuntimeError, ["AdamW", "`fused` and `foreach` cannot"]),
    (lambda ps: AdamW(ps, differentiable=True), NotImplementedError, ["AdamW", "differentiable=True"]),
    (lambda ps: Adam(ps, capturable=True), NotImplementedError, ["Adam", "capturable=True", "CUDA graph"]),
    (lambda ps: SGD(ps, maximize="yes"), ValueError, ["SGD: maximize must be one of True, False", "'yes'"]),
    (lambda ps: AdamW(ps, fused=1), ValueError, ["AdamW: fused must be one of True, False, None", "1"]),
    (lambda ps: AdamW(ps, nesterov=True), TypeError, ["nesterov"]),
], ids=["fused-and-foreach", "differentiable", "capturable", "maximize-str", "fused-int", "unknown"])
def test_keywords_that_are_not_implemented_are_refused_naming_them(make, error, words):
    assert_raises_naming(lambda: make(make_params()), error, words)


def test_zero_grad_set_to_none_false_zeroes_in_place():
    params = make_params()
    opt = SGD(params, lr=0.1)
    set_grads(params, [np.ones(s) for s in SHAPES])
    grads = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.numpy().any() for p, g in zip(params, grads))
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_add_param_group_trains_the_new_group_as_torch(torch):
    """Fine-tuning's unfreezing: a group added after some steps, with its own lr, steps as PyTorch's does."""
    ours = make_params()
    theirs = torch_twins(torch, ours)
    opt, topt = AdamW(ours[:2], lr=0.01), torch.optim.AdamW(theirs[:2], lr=0.01)
    rng = np.random.default_rng(5)
    for step in range(6):
        if step == 3:
            opt.add_param_group({"params": ours[2], "lr": 0.1})
            topt.add_param_group({"params": theirs[2], "lr": 0.1})
        grads = [rng.standard_normal(shape) for shape in SHAPES]
        set_grads(ours, grads, theirs)
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=0)
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert_raises_naming(lambda: opt.add_param_group({"params": ours[0]}), ValueError, ["AdamW", "more than once"])
    assert_raises_naming(lambda: opt.add_param_group({"params": {ours[0]}}), TypeError, ["ordered collections"])
    assert_raises_naming(lambda: opt.add_param_group(ours[0]), TypeError, ["param_group must be a dict", "Tensor"])


def test_a_state_dict_saved_before_the_new_options_loads_with_torchs_defaults():
    """A group saved without maximize, amsgrad, foreach, ... (our first checkpoints, older PyTorch) gets PyTorch's
    defaults for them, as PyTorch's __setstate__ gives them; a missing older option is refused."""
    params = make_params()
    opt = Adam(params, lr=0.01)
    set_grads(params, [np.ones(s) for s in SHAPES])
    opt.step()
    saved = opt.state_dict()
    from tinygrad_llm.optim import ADDED_OPTIONS
    old = {"state": saved["state"], "param_groups": [{k: v for k, v in group.items() if k not in ADDED_OPTIONS}
                                                     for group in saved["param_groups"]]}
    again = Adam(params, lr=0.5, maximize=True)
    again.load_state_dict(old)
    assert again.param_groups[0]["maximize"] is False and again.param_groups[0]["lr"] == 0.01
    w = AdamW(params)
    w.load_state_dict(old)                                   # an Adam's groups: AdamW stays decoupled, as torch's
    assert w.param_groups[0]["decoupled_weight_decay"] is True
    del old["param_groups"][0]["eps"]
    assert_raises_naming(lambda: Adam(params).load_state_dict(old), ValueError, ["lacks option(s) ['eps']"])


def test_a_checkpoint_written_before_the_new_options_loads(tmp_path):
    from checkpoint_files import rewrite, tiny_optimizer, write_tiny_checkpoint
    from tinygrad_llm.optim import ADDED_OPTIONS
    from tinygrad_llm.recipes.checkpoint import load_checkpoint, model_from_checkpoint, restore
    path = tmp_path / "old.safetensors"
    write_tiny_checkpoint(path)

    def drop_new_options(header, tensors):
        for group in header["optimizer"]["param_groups"]:
            assert group["fused"] is None                    # saved as JSON null
            for key in ADDED_OPTIONS:
                group.pop(key)
    rewrite(path, drop_new_options)
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint)
    optimizer = tiny_optimizer(model)
    restore(checkpoint, model, optimizer)
    assert optimizer.param_groups[0]["amsgrad"] is False and optimizer.param_groups[1]["weight_decay"] == 0.0


def test_an_amsgrad_checkpoint_saves_and_loads_its_largest_second_moments(tmp_path):
    from checkpoint_files import TINY
    from tinygrad_llm.models.gpt import GPT, GPTConfig
    from tinygrad_llm.recipes.checkpoint import load_checkpoint, restore, save_checkpoint
    model = GPT(GPTConfig(**TINY))
    optimizer = AdamW(model.parameters(), lr=1e-2, amsgrad=True)
    x = np.random.default_rng(0).integers(0, TINY["vocab_size"], (2, 2, TINY["block_size"]))
    for _ in range(2):
        optimizer.zero_grad()
        model(x[0], x[1])[1].backward()
        optimizer.step()
    save_checkpoint(tmp_path / "amsgrad.safetensors", model, optimizer, meta={"iter": 2})
    again = AdamW(model.parameters(), lr=1e-2, amsgrad=True)
    restore(load_checkpoint(tmp_path / "amsgrad.safetensors"), model, again)
    saved, loaded = optimizer.state_dict(), again.state_dict()
    assert loaded["param_groups"] == saved["param_groups"] and "max_exp_avg_sq" in loaded["state"][0]
    assert all(np.array_equal(loaded["state"][i][key], saved["state"][i][key])
               for i in saved["state"] for key in saved["state"][i] if key != "step")


# ---------------------------------------------------------------- torch.nn.utils: clipping, vectors

@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf", 0, -math.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_of_every_order_matches_torch(norm_type, dtype, torch):
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    grads[1][0] = 0                                          # the 0-"norm" counts what is not zero
    ours = make_params(dtype=dtype)
    theirs = torch_twins(torch, ours)
    set_grads(ours, grads, theirs)
    norm = clip_grad_norm_(ours, 0.5, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type=norm_type)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert norm.shape == () and norm.dtype == dtype
    np.testing.assert_allclose(norm.item(), expected.item(), rtol=rtol)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=0)


def test_clip_grad_norm_edges_as_torch(torch):
    params = make_params()
    assert clip_grad_norm_(params, 1.0).item() == 0.0       # no gradient at all: a 0 tensor, as torch's
    import tinygrad_llm
    assert tinygrad_llm.nn.utils.clip_grad_norm_ is clip_grad_norm_     # optim's is torch.nn.utils'
    set_grads(params, [np.full(s, np.nan) for s in SHAPES])
    assert_raises_naming(lambda: clip_grad_norm_(params, 1.0, error_if_nonfinite=True), RuntimeError,
                         ["clip_grad_norm_", "non-finite", "error_if_nonfinite=False"])
    assert math.isnan(clip_grad_norm_(params, 1.0).item())  # allowed: scaled by NaN, as torch does
    assert_raises_naming(lambda: clip_grad_norm_(params, 1.0, foreach="yes"), ValueError, ["foreach", "'yes'"])


def test_clip_grad_value_and_parameter_vectors_match_torch(torch):
    from tinygrad_llm.nn.utils import clip_grad_value_, parameters_to_vector, vector_to_parameters
    rng = np.random.default_rng(6)
    grads = [2 * rng.standard_normal(shape) for shape in SHAPES]
    ours = make_params()
    theirs = torch_twins(torch, ours)
    set_grads(ours, grads, theirs)
    assert clip_grad_value_(ours, 1.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    vector = parameters_to_vector(ours)
    np.testing.assert_array_equal(vector.detach().numpy(), torch.nn.utils.parameters_to_vector(theirs).detach())
    vector.sum().backward()                                  # in the graph, as torch's
    vector_to_parameters(vector * 2, ours)
    assert np.array_equal(ours[2].data.ravel(), 2 * theirs[2].detach().numpy().ravel())
    assert_raises_naming(lambda: clip_grad_value_(ours, -1.0), ValueError, ["clip_grad_value_", "-1.0"])
    assert_raises_naming(lambda: vector_to_parameters(np.zeros(3), ours), TypeError, ["expected a Tensor", "ndarray"])
