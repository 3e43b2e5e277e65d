"""gradcheck: prove a backward correct by comparing it with central differences, in float64.

For f: inputs -> output and a small step eps, the central difference
    (f(x + eps·u) - f(x - eps·u)) / (2·eps) = J·u + O(eps²)
is the directional derivative of f along u, computed without any backward. Backward computes the
vector-Jacobian product wᵀJ for a chosen output weighting w. Two ways to compare them:

* full Jacobian (small problems): u runs over every input element (one column of J each), w over every output
  element (one row of J each); every entry of J is compared.
* random directions (large problems): for random w and u,  wᵀ(J·u)  from differences must equal  (wᵀJ)·u  from
  backward. One number per direction and input, so the cost does not grow with the input size, and a wrong
  gradient is caught with probability 1 (a random u is almost never orthogonal to the error).

An entry passes when |analytic - numeric| <= atol + rtol·|numeric| (PyTorch's rule).

    report = gradcheck(lambda x, w: (x @ w).tanh(), [x, w])   # float64 tensors with requires_grad=True
"""
import numpy as np

from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with central differences; `.report` holds the details."""

    def __init__(self, report):
        super().__init__(f"gradcheck failed\n{report}")
        self.report = report


class GradcheckReport:
    """Per input: the largest absolute and relative error between backward and central differences."""

    def __init__(self, mode, rows):
        self.mode = mode
        self.rows = rows  # one dict per checked input: index, shape, max_abs_error, max_rel_error, passed

    @property
    def passed(self):
        return all(row["passed"] for row in self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def __str__(self):
        lines = [f"gradcheck ({self.mode}):"]
        for r in self.rows:
            lines.append(f"  input {r['index']} {str(r['shape']):<14} max abs err {r['max_abs_error']:.3e}  "
                         f"max rel err {r['max_rel_error']:.3e}  {'ok' if r['passed'] else 'FAILED'}")
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, mode="auto", n_directions=3, jacobian_limit=20000,
              seed=0, raise_on_failure=True):
    """Check the gradients of `fn(*inputs)` with respect to every input that requires grad.

    fn: takes the inputs, returns one Tensor of any shape; it must be deterministic.
    inputs: Tensors (the float64 ones with requires_grad=True are checked) or other values passed through; a single
    Tensor may be given alone.
    mode: "jacobian", "directions", or "auto" (the full Jacobian when it has at most `jacobian_limit` entries).
    Returns a GradcheckReport; raises GradcheckError on failure unless raise_on_failure=False.
    The caller's tensors are left untouched: fn runs on copies.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else inputs   # one tensor, as torch.autograd.gradcheck takes
    inputs = [Tensor(x.data.copy(), requires_grad=x.requires_grad) if isinstance(x, Tensor) else x for x in inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; central differences need float64 "
                            f"(convert with .to(np.float64))")
    with no_grad():
        out_size = _evaluate(fn, inputs).numel()
    if mode == "auto":
        mode = "jacobian" if out_size * sum(inputs[i].numel() for i in checked) <= jacobian_limit else "directions"
    if mode == "jacobian":
        analytic, numeric = _full_jacobians(fn, inputs, checked, out_size, eps)
    elif mode == "directions":
        analytic, numeric = _directional_derivatives(fn, inputs, checked, eps, n_directions, seed)
    else:
        raise ValueError(f"gradcheck: mode must be 'auto', 'jacobian' or 'directions', got {mode!r}")

    rows = []
    for i, a, n in zip(checked, analytic, numeric):
        abs_err = np.abs(a - n)
        rows.append(dict(index=i, shape=inputs[i].shape,
                         max_abs_error=float(abs_err.max()),
                         max_rel_error=float((abs_err / np.maximum(np.abs(n), 1e-300)).max()),
                         passed=bool(np.all(abs_err <= atol + rtol * np.abs(n)))))
    report = GradcheckReport(mode, rows)
    if raise_on_failure and not report.passed:
        raise GradcheckError(report)
    return report


def _evaluate(fn, inputs):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def _vjp(fn, inputs, checked, w):
    """(wᵀJ) for every checked input: one backward with output gradient w."""
    for i in checked:
        inputs[i].grad = None
    out = _evaluate(fn, inputs)
    out.backward(w.reshape(out.shape))
    return [np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad.numpy().copy() for i in checked]


def _central_difference(fn, inputs, i, direction, eps):
    """(f(x + eps·u) - f(x - eps·u)) / (2·eps) for input i moved along `direction`, as a flat array."""
    x = inputs[i]
    original = x.data
    with no_grad():
        x.data = original + eps * direction
        plus = _evaluate(fn, inputs).numpy().reshape(-1)
        x.data = original - eps * direction
        minus = _evaluate(fn, inputs).numpy().reshape(-1)
    x.data = original
    return (plus - minus) / (2 * eps)


def _full_jacobians(fn, inputs, checked, out_size, eps):
    """J (out_size, input size) per checked input: rows from backward with one-hot w, columns from differences."""
    analytic = [np.zeros((out_size, inputs[i].numel())) for i in checked]
    for row in range(out_size):
        w = np.zeros(out_size)
        w[row] = 1.0
        for jac, grad in zip(analytic, _vjp(fn, inputs, checked, w)):
            jac[row] = grad.reshape(-1)
    numeric = []
    for i in checked:
        jac = np.zeros((out_size, inputs[i].numel()))
        for col in range(inputs[i].numel()):
            u = np.zeros(inputs[i].numel())
            u[col] = 1.0
            jac[:, col] = _central_difference(fn, inputs, i, u.reshape(inputs[i].shape), eps)
        numeric.append(jac)
    return analytic, numeric


def _directional_derivatives(fn, inputs, checked, eps, n_directions, seed):
    """Per checked input, n_directions pairs (w, u): (wᵀJ)·u from backward against wᵀ(J·u) from differences."""
    rng = np.random.default_rng(seed)
    with no_grad():
        out_size = _evaluate(fn, inputs).numel()
    analytic = [np.zeros(n_directions) for _ in checked]
    numeric = [np.zeros(n_directions) for _ in checked]
    for d in range(n_directions):
        w = rng.standard_normal(out_size)
        grads = _vjp(fn, inputs, checked, w)
        for k, i in enumerate(checked):
            u = rng.standard_normal(inputs[i].shape)
            analytic[k][d] = np.sum(grads[k] * u)
            numeric[k][d] = w @ _central_difference(fn, inputs, i, u, eps)
    return analytic, numeric
