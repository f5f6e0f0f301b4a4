"""sseq.scan: every CPU backend against float64 loops — outputs, last states and gradients.

The oracles below are written here, independently of ``sseq.scan``: explicit loops over time
in float64, differentiated by autograd. float32 backends are held to rtol 6e-4 / atol 2e-3,
the tolerances of the Mamba project's own tests; float64 paths to 1e-10. (The Triton backend
has its own test file.)
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from sseq import scan

BACKENDS = [name for name in scan.BACKENDS if name != "triton"]
RTOL, ATOL = 6e-4, 2e-3  # float32 against float64
TOL = 1e-10  # float64 against float64
LENGTHS = [1, 7, 130, 300]  # not powers of two; 130 and 300 span many checkpoint chunks
OPTIONS = {  # name: the optional parts of the selective scan that are switched on
    "plain": (),
    "D": ("D",),
    "z": ("z",),
    "D+bias": ("D", "delta_bias"),
    "bias+softplus": ("delta_bias", "delta_softplus"),
    "all": ("D", "z", "delta_bias", "delta_softplus"),
}


def selective_oracle(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Mamba's selective scan, one time step at a time, from the paper's equations."""
    dt = delta if delta_bias is None else delta + delta_bias
    if delta_softplus:
        dt = torch.log1p(torch.exp(dt))
    batch, length, d = u.shape
    h = torch.zeros(batch, d, A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(length):
        A_bar = torch.exp(dt[:, t, :, None] * A)  # zero-order hold for A
        B_bar = dt[:, t, :, None] * B[:, t, None, :]  # Euler for B
        h = A_bar * h + B_bar * u[:, t, :, None]
        y = (h * C[:, t, None, :]).sum(-1)
        if D is not None:
            y = y + D * u[:, t]
        if z is not None:
            y = y * z[:, t] * torch.sigmoid(z[:, t])
        ys.append(y)
    return torch.stack(ys, 1), h


def selective_inputs(length, options, batch=2, d=3, n=4, seed=0):
    """float64 inputs; Δ is positive unless softplus makes it so."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    softplus = "delta_softplus" in options
    delta = randn(batch, length, d) if softplus else 0.05 + 0.5 * torch.rand(
        batch, length, d, generator=g, dtype=torch.float64)
    x = {"u": randn(batch, length, d), "delta": delta, "A": -torch.exp(0.5 * randn(d, n)),
         "B": randn(batch, length, n), "C": randn(batch, length, n)}
    if "D" in options:
        x["D"] = randn(d)
    if "z" in options:
        x["z"] = randn(batch, length, d)
    if "delta_bias" in options:
        x["delta_bias"] = 0.5 * randn(d) if softplus else 0.2 * torch.rand(d, generator=g,
                                                                          dtype=torch.float64)
    return x, softplus


def run_with_grads(fn, inputs, dtype, seed=1, **kwargs):
    """y, last state and the gradients of a random linear function of both, in float64."""
    leaves = {k: v.to(dtype).requires_grad_() for k, v in inputs.items()}
    y, last = fn(**leaves, return_last_state=True, **kwargs)
    g = torch.Generator().manual_seed(seed)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    g_last = torch.randn(last.shape, generator=g, dtype=torch.float64)
    ((y.double() * gy).sum() + (last.double() * g_last).sum()).backward()
    # Every input is used, so every one gets a gradient (a zero one, not None, for A at l = 1).
    assert all(v.grad is not None for v in leaves.values()), [k for k, v in leaves.items()
                                                               if v.grad is None]
    return y.double(), last.double(), {k: v.grad.double() for k, v in leaves.items()}


def oracle_with_grads(inputs, softplus):
    def fn(return_last_state, **x):
        return selective_oracle(**x, delta_softplus=softplus)

    return run_with_grads(fn, inputs, torch.float64)


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_selective_scan_matches_float64_loop(backend, length, options):
    inputs, softplus = selective_inputs(length, options)
    y, last, grads = run_with_grads(scan.selective_scan, inputs, torch.float32,
                                    delta_softplus=softplus, backend=backend)
    y_ref, last_ref, grads_ref = oracle_with_grads(inputs, softplus)
    torch.testing.assert_close(y, y_ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(last, last_ref, rtol=RTOL, atol=ATOL)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=RTOL, atol=ATOL,
                                   msg=lambda m, name=name: f"d{name}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_selective_scan_float64_is_exact(backend):
    inputs, softplus = selective_inputs(130, OPTIONS["all"])
    y, last, grads = run_with_grads(scan.selective_scan, inputs, torch.float64,
                                    delta_softplus=softplus, backend=backend)
    y_ref, last_ref, grads_ref = oracle_with_grads(inputs, softplus)
    torch.testing.assert_close(y, y_ref, rtol=TOL, atol=TOL)
    torch.testing.assert_close(last, last_ref, rtol=TOL, atol=TOL)
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=TOL, atol=TOL)


def test_reference_is_the_oracle():
    inputs, softplus = selective_inputs(7, OPTIONS["all"])
    y, last = scan.selective_scan_ref(**inputs, delta_softplus=softplus, return_last_state=True)
    y_ref, last_ref = selective_oracle(**inputs, delta_softplus=softplus)
    torch.testing.assert_close(y, y_ref, rtol=TOL, atol=TOL)
    torch.testing.assert_close(last, last_ref, rtol=TOL, atol=TOL)


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
@pytest.mark.parametrize("options", [OPTIONS["plain"], OPTIONS["all"]], ids=["plain", "all"])
def test_cpu_backward_passes_gradcheck(options):
    """The hand-written backward against finite differences (float64)."""
    inputs, softplus = selective_inputs(21, options, batch=1, d=2, n=3)
    names = list(inputs)

    def fn(*xs):
        return scan.cpu.selective_scan_cpu(**dict(zip(names, xs, strict=True)),
                                                delta_softplus=softplus, return_last_state=True)

    leaves = tuple(v.requires_grad_() for v in inputs.values())
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("used", ["y", "last"])
def test_gradients_when_only_one_output_is_used(backend, used):
    inputs, _ = selective_inputs(40, ("D",))
    grads = []
    for name in (backend, "reference"):
        x = {k: v.float().requires_grad_() for k, v in inputs.items()}
        y, last = scan.selective_scan(**x, return_last_state=True, backend=name)
        (y if used == "y" else last).square().sum().backward()
        grads.append([v.grad for v in x.values()])
    for g, g_ref in zip(*grads, strict=True):
        if g_ref is None:  # the loss does not depend on it (D, through the last state)
            assert g is None or torch.all(g == 0)
        else:
            torch.testing.assert_close(g, g_ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_at_length_one_A_gets_a_zero_gradient_not_none(backend):
    """h_0 = exp(Δ_0 A) h_{−1} + Δ_0 B_0 u_0 with h_{−1} = 0: A is used, its gradient is 0,
    as autograd gives for the loop (issue 9: "parallel" left A.grad None). Likewise a in the
    linear scan without h0."""
    inputs, _ = selective_inputs(1, ("D",))
    x = {k: v.requires_grad_() for k, v in inputs.items()}
    scan.selective_scan(**x, backend=backend).sum().backward()
    assert x["A"].grad is not None and torch.all(x["A"].grad == 0)
    a, b = (v.requires_grad_() for v in linear_inputs(1, (3,), False).values())
    scan.linear_scan(a, b, backend=backend).sum().backward()
    assert a.grad is not None and torch.all(a.grad == 0)
    torch.testing.assert_close(b.grad, torch.ones_like(b), rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_order_gradients_are_exact_or_refused(backend):
    """Under create_graph=True the PyTorch backends differentiate again, exactly (against the
    float64 loop); the compiled one, whose backward pass autograd cannot see into, refuses
    with a clear error instead of silently returning gradients that do not require grad
    (issue 9)."""
    inputs, softplus = selective_inputs(9, OPTIONS["all"], batch=1, d=2, n=3)

    def second_order(fn):
        x = {k: v.clone().requires_grad_() for k, v in inputs.items()}
        y = fn(**x, delta_softplus=softplus)
        (du,) = torch.autograd.grad(y.square().sum(), [x["u"]], create_graph=True)
        assert du.requires_grad
        return torch.autograd.grad(du.square().sum(), list(x.values()))

    if backend == "cpu":
        refused = (r"^backend='cpu' computes first-order gradients only: its backward pass is "
                   r"compiled code that autograd cannot differentiate\. For second-order "
                   r"gradients \(create_graph=True\) use backend='reference' or 'parallel'$")
        with pytest.raises(RuntimeError, match=refused):
            second_order(lambda **x: scan.selective_scan(**x, backend=backend))
        a, b = (v.clone().requires_grad_() for v in linear_inputs(5, (2,), False).values())
        with pytest.raises(RuntimeError, match=refused):
            torch.autograd.grad(scan.linear_scan(a, b, backend=backend).square().sum(), [a],
                                create_graph=True)
        (da,) = torch.autograd.grad(scan.linear_scan(a, b, backend=backend).sum(), [a])
        assert not da.requires_grad  # without create_graph, first order as before
        return
    grads = second_order(lambda **x: scan.selective_scan(**x, backend=backend))
    grads_ref = second_order(lambda **x: selective_oracle(**x)[0])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_inputs(backend):
    inputs, _ = selective_inputs(33, ("z",))
    strided = {k: v.transpose(1, 2).contiguous().transpose(1, 2) if v.dim() == 3 else v
               for k, v in inputs.items()}
    assert not strided["u"].is_contiguous()
    y = scan.selective_scan(**strided, backend=backend)
    torch.testing.assert_close(y, selective_oracle(**inputs)[0], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_low_precision_inputs_are_computed_in_float32(backend):
    inputs, _ = selective_inputs(50, ("D", "z"))
    y16 = scan.selective_scan(**{k: v.bfloat16() for k, v in inputs.items()},
                              return_last_state=True, backend=backend)
    y32 = scan.selective_scan(**{k: v.bfloat16().float() for k, v in inputs.items()},
                              return_last_state=True, backend=backend)
    assert y16[0].dtype == torch.bfloat16 and y16[1].dtype == torch.float32
    torch.testing.assert_close(y16[0], y32[0].bfloat16())  # only the final rounding differs
    torch.testing.assert_close(y16[1], y32[1])


@pytest.mark.parametrize("name", ["D", "z", "delta_bias"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_options_of_a_float32_scan_are_computed_in_float32(backend, name):
    """Protects: the compute dtype follows u (float32 for a float32 u), and every input is cast
    to it: a float64 D, z or delta_bias gives, bit for bit, the result of the same input cast
    to float32 beforehand (a backend that computed that term in float64 would differ in the
    last bits)."""
    inputs, _ = selective_inputs(50, ("D", "z", "delta_bias"))
    x32 = {k: v.float() for k, v in inputs.items()}
    mixed = dict(x32, **{name: inputs[name]})
    got = scan.selective_scan(**mixed, return_last_state=True, backend=backend)
    want = scan.selective_scan(**x32, return_last_state=True, backend=backend)
    assert got[0].dtype == got[1].dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_fast_exp_is_within_two_ulp():
    special = [0.0, -87.33654, 88.37, 88.72, 88.73, -np.inf, np.inf, np.nan]
    x = np.concatenate([np.linspace(-90, 89, 400_001), special]).astype(np.float32)
    out = np.empty_like(x)
    scan.cpu._exp_into(x, out, np.empty(2 * x.size, dtype=np.int32))
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
    normal = (exact >= np.finfo(np.float32).tiny) & (exact <= np.finfo(np.float32).max)
    rel = np.abs(out[normal] - exact[normal]) / exact[normal]
    assert rel.max() <= 2 * 2.0**-23
    assert np.all(out[exact < np.finfo(np.float32).tiny] < 1.2e-38)  # flushed, or denormal
    assert np.all(np.isinf(out[x > 88.73])) and np.isnan(out[-1])


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_cpu_softplus_and_gate_match_torch():
    """With l = n = 1 and u = B = C = 1, y_0 = Δ_0 · SiLU(z_0): the fused elementwise maths."""
    x = torch.cat([torch.linspace(-40, 40, 4001), torch.tensor([0.0, 1e-8, -1e-8, 88.0, -100.0])])
    d = x.numel()
    ones = torch.ones(1, 1, d)
    delta = scan.selective_scan(ones, x.view(1, 1, d), -torch.ones(d, 1), ones[..., :1],
                                ones[..., :1], delta_softplus=True, backend="cpu")
    tiny = torch.finfo(torch.float32).tiny  # below it, the fast exp flushes to zero
    torch.testing.assert_close(delta.view(-1), torch.nn.functional.softplus(x), rtol=1e-6,
                               atol=tiny)
    gated = scan.selective_scan(ones, ones, -torch.ones(d, 1), ones[..., :1], ones[..., :1],
                                z=x.view(1, 1, d), backend="cpu")
    torch.testing.assert_close(gated.view(-1), torch.nn.functional.silu(x), rtol=1e-6,
                               atol=tiny)


# --------------------------------------------------------------------------- linear scan
def linear_oracle(a, b, h0=None):
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    hs = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        hs.append(h)
    return torch.stack(hs, 1)


def linear_inputs(length, trailing, with_h0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (2, length, *trailing)
    a = torch.rand(shape, generator=g, dtype=torch.float64) * 1.8 - 0.9  # |a| < 1
    x = {"a": a, "b": torch.randn(shape, generator=g, dtype=torch.float64)}
    if with_h0:
        x["h0"] = torch.randn((2, *trailing), generator=g, dtype=torch.float64)
    if dtype.is_complex:
        phase = torch.exp(1j * torch.rand(shape, generator=g, dtype=torch.float64))
        x = {k: v.to(dtype) for k, v in x.items()}
        x["a"] = x["a"] * phase.to(dtype)
    return x


def linear_with_grads(fn, inputs, dtype):
    leaves = {k: v.to(dtype).requires_grad_() for k, v in inputs.items()}
    h = fn(**leaves)
    g = torch.randn(h.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (h.real.double() * g).sum().backward()
    assert all(v.grad is not None for v in leaves.values()), [k for k, v in leaves.items()
                                                               if v.grad is None]
    return h, {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("with_h0", [False, True], ids=["zeros", "h0"])
@pytest.mark.parametrize("trailing", [(), (3,), (2, 3)], ids=str)
@pytest.mark.parametrize("length", [1, 7, 130])
@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_scan_matches_loop(backend, length, trailing, with_h0):
    inputs = linear_inputs(length, trailing, with_h0)
    h, grads = linear_with_grads(lambda **x: scan.linear_scan(**x, backend=backend), inputs,
                                 torch.float32)
    h_ref, grads_ref = linear_with_grads(linear_oracle, inputs, torch.float64)
    assert h.shape == (2, length, *trailing) and h.dtype == torch.float32
    torch.testing.assert_close(h.double(), h_ref, rtol=RTOL, atol=ATOL)
    for name in grads_ref:
        torch.testing.assert_close(grads[name].double(), grads_ref[name], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_scan_complex(backend):
    """Complex a (an S4D recurrence): values, and gradients in PyTorch's convention."""
    inputs = linear_inputs(45, (4,), True, dtype=torch.complex128)
    h, grads = linear_with_grads(lambda **x: scan.linear_scan(**x, backend=backend), inputs,
                                 torch.complex128)
    h_ref, grads_ref = linear_with_grads(linear_oracle, inputs, torch.complex128)
    torch.testing.assert_close(h, h_ref, rtol=TOL, atol=TOL)
    for name in grads_ref:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("length", [*range(1, 18), 31, 33, 100, 257])
def test_parallel_scan_any_length(length):
    inputs = linear_inputs(length, (5,), True)
    torch.testing.assert_close(scan.linear_scan_parallel(**inputs), linear_oracle(**inputs),
                               rtol=TOL, atol=TOL)


def test_linear_scan_keeps_low_precision_dtype():
    inputs = {k: v.bfloat16() for k, v in linear_inputs(20, (3,), True).items()}
    for backend in BACKENDS:
        h = scan.linear_scan(**inputs, backend=backend)
        assert h.dtype == torch.bfloat16
        torch.testing.assert_close(h, linear_oracle(**{k: v.float() for k, v in inputs.items()})
                                   .bfloat16())


# --------------------------------------------------------------------------- threads
# `make unit` runs with OMP_NUM_THREADS=1, where the cpu backend runs its tasks in the calling
# thread; these tests make the backend see 2 threads, so that its own thread pool does the
# work. They patch torch.get_num_threads, which the backend reads, rather than call
# torch.set_num_threads(2): that would start PyTorch's OpenMP pool, and a process forked
# after that (make mutants runs each mutant in a forked child) hangs in its first parallel
# PyTorch operation.
@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_cpu_pool_waits_for_every_task_on_two_threads(two_threads):
    """Protects: the pool's tasks have all finished, on both threads, when ``_run`` returns,
    and an error in a task reaches the caller (a pool that submits without awaiting fails)."""
    import threading
    import time

    done, names = np.zeros(6), set()

    def kernel(out, i, blk, c0, c1):
        time.sleep(0.02)
        names.add(threading.current_thread().name)
        out[i] = c1 - c0

    tasks = [(i, 0, 0, i + 1) for i in range(6)]
    scan.cpu._run(kernel, (done,), tasks)
    assert done.tolist() == [1, 2, 3, 4, 5, 6]
    assert len(names) == 2 and all(n.startswith("sseq-scan") for n in names)

    def failing(i, blk, c0, c1):
        raise ArithmeticError(f"task {i}")

    with pytest.raises(ArithmeticError, match="task"):
        scan.cpu._run(failing, (), tasks)


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
@pytest.mark.parametrize("length", [7, 300])
def test_cpu_backend_on_two_threads_matches_the_loop(two_threads, length):
    """Protects the multi-threaded path of the fused CPU scan: outputs, last state and every
    gradient of several (sequence, channel block) tasks split over 2 threads (float64, exact)."""
    import os

    inputs, softplus = selective_inputs(length, OPTIONS["all"], batch=3, d=5)
    assert len(scan.cpu._tasks(3, 5)) > 2  # several tasks for the two threads
    y, last, grads = run_with_grads(scan.selective_scan, inputs, torch.float64,
                                    delta_softplus=softplus, backend="cpu")
    assert (os.getpid(), 2) in scan.cpu._POOLS  # the pool ran them
    y_ref, last_ref, grads_ref = oracle_with_grads(inputs, softplus)
    torch.testing.assert_close(y, y_ref, rtol=TOL, atol=TOL)
    torch.testing.assert_close(last, last_ref, rtol=TOL, atol=TOL)
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=TOL, atol=TOL)
    lin = linear_inputs(length, (3, 2), True)
    h, lin_grads = linear_with_grads(lambda **x: scan.linear_scan(**x, backend="cpu"), lin,
                                     torch.float64)
    h_ref, lin_grads_ref = linear_with_grads(linear_oracle, lin, torch.float64)
    torch.testing.assert_close(h, h_ref, rtol=TOL, atol=TOL)
    for name in lin_grads_ref:
        torch.testing.assert_close(lin_grads[name], lin_grads_ref[name], rtol=TOL, atol=TOL)


# --------------------------------------------------------------------------- backends
def test_backends_lists_what_is_installed():
    assert scan.BACKENDS[:2] == ("reference", "parallel")
    assert ("cpu" in scan.BACKENDS) == (importlib.util.find_spec("numba") is not None)
    assert ("triton" in scan.BACKENDS) == (importlib.util.find_spec("triton") is not None)


def test_auto_picks_the_fastest_available(monkeypatch):
    expected_cpu = "cpu" if "cpu" in scan.BACKENDS else "parallel"
    assert scan.resolve_backend("auto", "cpu") == expected_cpu
    assert scan.resolve_backend("auto", "meta") == "parallel"
    monkeypatch.setattr(scan, "BACKENDS", ("reference", "parallel", "triton"))
    assert scan.resolve_backend("auto", "cuda") == "triton"
    assert scan.resolve_backend("auto", "cpu") == "parallel"  # numba missing
    monkeypatch.setattr(scan, "BACKENDS", ("reference", "parallel"))
    assert scan.resolve_backend("auto", torch.device("cuda")) == "parallel"


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_auto_on_cpu_runs_the_cpu_backend():
    inputs, _ = selective_inputs(20, ("D",))
    assert torch.equal(scan.selective_scan(**inputs), scan.selective_scan(**inputs, backend="cpu"))


@pytest.mark.parametrize("name, message", [("triton", "pip install triton"),
                                           ("cpu", "pip install numba")])
def test_missing_dependency_says_what_to_install(monkeypatch, name, message):
    monkeypatch.setattr(scan, "BACKENDS", ("reference", "parallel"))
    inputs, _ = selective_inputs(5, ())
    with pytest.raises(ImportError, match=message):
        scan.selective_scan(**inputs, backend=name)
    with pytest.raises(ImportError, match=message):
        scan.linear_scan(inputs["u"], inputs["u"], backend=name)


@pytest.mark.parametrize("backend", ["fast", "", None, 3, "Reference"])
def test_unknown_backend_lists_backends(backend):
    inputs, _ = selective_inputs(5, ())
    with pytest.raises(ValueError, match=r"backend must be .*BACKENDS = \('reference'"):
        scan.selective_scan(**inputs, backend=backend)
    with pytest.raises(ValueError, match="backend must be"):
        scan.linear_scan(inputs["u"], inputs["u"], backend=backend)


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_cpu_backend_needs_cpu_tensors():
    inputs, _ = selective_inputs(5, ())
    with pytest.raises(ValueError, match="needs CPU tensors, got tensors on meta"):
        scan.selective_scan(**{k: v.to("meta") for k, v in inputs.items()}, backend="cpu")


# --------------------------------------------------------------------------- bad input
def _replace(**changes):
    def make():
        inputs, _ = selective_inputs(5, ("D", "z", "delta_bias"))  # b=2, l=5, d=3, n=4
        inputs.update({k: v(inputs) if callable(v) else v for k, v in changes.items()})
        return inputs
    return make


BAD_SELECTIVE = {  # case: (inputs, error, message)
    "u not a tensor": (_replace(u=[[1.0]]), TypeError, r"u must be a torch.Tensor.*list"),
    "u integer": (_replace(u=lambda x: x["u"].long()), TypeError, r"u must be .*int64"),
    "u 2-d": (_replace(u=lambda x: x["u"][0]), ValueError, r"u must have shape \(b, l, d\)"),
    "u empty": (_replace(u=torch.zeros(2, 0, 3), delta=torch.zeros(2, 0, 3), B=torch.zeros(
        2, 0, 4), C=torch.zeros(2, 0, 4), z=torch.zeros(2, 0, 3)), ValueError, "u must be non-"),
    "delta vs u": (_replace(delta=torch.ones(2, 5, 4)), ValueError,
                   r"delta must have shape \(b, l, d\) = \(2, 5, 3\), got \(2, 5, 4\)"),
    "delta integer": (_replace(delta=lambda x: x["delta"].int()), TypeError, "delta must be"),
    "A rows vs d": (_replace(A=-torch.ones(5, 4)), ValueError,
                    r"A must have shape \(d, n\).* = \(3, \?\), got \(5, 4\)"),
    "A complex": (_replace(A=-torch.ones(3, 4, dtype=torch.complex64)), TypeError,
                  "A must be a real floating-point tensor, got dtype torch.complex64"),
    "n < 1": (_replace(A=torch.ones(3, 0)), ValueError, r"A must have n >= 1.*\(3, 0\)"),
    "B state size": (_replace(B=torch.ones(2, 5, 6)), ValueError,
                     r"B must have shape \(b, l, n\) = \(2, 5, 4\), got \(2, 5, 6\)"),
    "B batch": (_replace(B=torch.ones(1, 5, 4)), ValueError, r"B must .* got \(1, 5, 4\)"),
    "C length": (_replace(C=torch.ones(2, 6, 4)), ValueError,
                 r"C must have shape \(b, l, n\) = \(2, 5, 4\), got \(2, 6, 4\)"),
    "C integer": (_replace(C=torch.ones(2, 5, 4, dtype=torch.int32)), TypeError, "C must be"),
    "D shape": (_replace(D=torch.ones(4)), ValueError, r"D must have shape \(d,\) = \(3,\)"),
    "z shape": (_replace(z=torch.ones(2, 5, 2)), ValueError, r"z must have shape .*\(2, 5, 2\)"),
    "delta_bias shape": (_replace(delta_bias=torch.ones(3, 1)), ValueError,
                         r"delta_bias must have shape \(d,\)"),
    "D not a tensor": (_replace(D=1.0), TypeError, "D must be a torch.Tensor"),
    "B on another device": (_replace(B=lambda x: x["B"].to("meta")), ValueError,
                            "B is on meta but the first input is on cpu"),
}


@pytest.mark.parametrize("backend", scan.BACKENDS)
def test_float8_inputs_are_refused_by_name(backend):
    """float8 has no arithmetic in PyTorch: three backends failed inside a promotion, and the
    Triton kernel read it (issue 9). Every backend refuses it, naming the argument."""
    inputs, _ = selective_inputs(5, ("D",))
    inputs = {k: v.float() for k, v in inputs.items()}
    for name in ("u", "B"):
        bad = dict(inputs, **{name: inputs[name].to(torch.float8_e4m3fn)})
        with pytest.raises(TypeError, match=rf"{name} must be a real floating-point tensor, "
                                            r"got dtype torch.float8_e4m3fn \(one of"):
            scan.selective_scan(**bad, backend=backend)
    a = torch.rand(2, 5, 3)
    with pytest.raises(TypeError, match=r"a must be a floating-point or complex tensor, got "
                                        r"dtype torch.float8_e5m2"):
        scan.linear_scan(a.to(torch.float8_e5m2), a, backend=backend)


@pytest.mark.parametrize("case", BAD_SELECTIVE.values(), ids=BAD_SELECTIVE.keys())
@pytest.mark.parametrize("fn", [scan.selective_scan, scan.selective_scan_ref],
                         ids=["selective_scan", "selective_scan_ref"])
def test_bad_selective_input_fails_early(fn, case):
    make, error, message = case
    with pytest.raises(error, match=message):
        fn(**make())


def test_flags_must_be_bools():
    inputs, _ = selective_inputs(5, ())
    with pytest.raises(TypeError, match="delta_softplus must be a bool"):
        scan.selective_scan(**inputs, delta_softplus="yes")
    with pytest.raises(TypeError, match="return_last_state must be a bool"):
        scan.selective_scan(**inputs, return_last_state=1)


BAD_LINEAR = {  # case: (a, b, h0, error, message)
    "a not a tensor": ([1.0, 2.0], torch.ones(2, 3), None, TypeError, "a must be a torch.Tensor"),
    "a integer": (torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3), None, TypeError,
                  "a must be a floating-point or complex tensor, got dtype torch.int64"),
    "a 1-d": (torch.ones(3), torch.ones(3), None, ValueError, r"a must have shape \(batch, l"),
    "a empty": (torch.ones(2, 0), torch.ones(2, 0), None, ValueError, "a must be non-empty"),
    "b vs a": (torch.ones(2, 3, 4), torch.ones(2, 3, 5), None, ValueError,
               r"b must have shape a.shape = \(2, 3, 4\), got \(2, 3, 5\)"),
    "b integer": (torch.ones(2, 3), torch.ones(2, 3, dtype=torch.int32), None, TypeError,
                  "b must be"),
    "h0 shape": (torch.ones(2, 3, 4), torch.ones(2, 3, 4), torch.ones(2, 3), ValueError,
                 r"h0 must have shape .* = \(2, 4\), got \(2, 3\)"),
    "h0 device": (torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, device="meta"), ValueError,
                  "h0 is on meta"),
}


@pytest.mark.parametrize("case", BAD_LINEAR.values(), ids=BAD_LINEAR.keys())
@pytest.mark.parametrize("fn", [scan.linear_scan, scan.linear_scan_ref,
                                scan.linear_scan_parallel], ids=lambda f: f.__name__)
def test_bad_linear_input_fails_early(fn, case):
    a, b, h0, error, message = case
    with pytest.raises(error, match=message):
        fn(a, b, h0)


# --------------------------------------------------------------------------- dispatch
def test_defaults_are_auto_on_the_inputs_device():
    """Protects the defaults: backend "auto", resolved for the inputs' device (CPU tensors:
    the cpu backend when there is one; meta tensors: the parallel scan)."""
    assert scan.resolve_backend() == scan.resolve_backend("auto", "cpu")
    inputs = linear_inputs(9, (3,), True)
    torch.testing.assert_close(scan.linear_scan(**inputs),
                               scan.linear_scan(**inputs, backend="auto"), rtol=0, atol=0)
    meta = {k: v.to("meta") for k, v in inputs.items()}
    assert scan.linear_scan(**meta).shape == (2, 9, 3)


def test_linear_scan_sends_real_inputs_to_triton_and_complex_ones_to_parallel(monkeypatch):
    """Protects linear_scan's dispatch to Triton (checked here without a GPU): the inputs as
    given go to the Triton kernel, except complex ones under "auto", which the real-only
    kernel cannot take: those go to the parallel scan. A complex input named "triton"
    explicitly still goes to the kernel (which refuses it)."""
    pytest.importorskip("triton")
    from sseq.scan import triton_linear

    calls = []
    monkeypatch.setattr(scan, "resolve_backend", lambda backend, device: "triton")
    monkeypatch.setattr(triton_linear, "linear_scan_triton",
                        lambda a, b, h0: calls.append((a, b, h0)) or "kernel")
    real = linear_inputs(5, (2,), True)
    assert scan.linear_scan(**real) == "kernel"
    assert all(got is real[k] for got, k in zip(calls[0], ("a", "b", "h0"), strict=True))
    cplx = linear_inputs(5, (2,), True, dtype=torch.complex128)
    torch.testing.assert_close(scan.linear_scan(**cplx), scan.linear_scan_parallel(**cplx),
                               rtol=0, atol=0)
    assert len(calls) == 1
    assert scan.linear_scan(**cplx, backend="triton") == "kernel" and len(calls) == 2


# --------------------------------------------------------------------------- references
@pytest.mark.parametrize("backend", BACKENDS)
def test_low_precision_output_without_the_last_state(backend):
    """Protects the output dtype when only y is asked for: u's dtype (bfloat16), computed in
    float32, for every backend (the float32 run, rounded, is the oracle)."""
    inputs, _ = selective_inputs(20, ("D", "z", "delta_bias"))
    y16 = scan.selective_scan(**{k: v.bfloat16() for k, v in inputs.items()}, backend=backend)
    y32 = scan.selective_scan(**{k: v.bfloat16().float() for k, v in inputs.items()},
                              backend=backend)
    assert isinstance(y16, torch.Tensor) and y16.dtype == torch.bfloat16
    torch.testing.assert_close(y16, y32.bfloat16())


def test_references_return_the_inputs_dtype_and_default_to_no_softplus():
    """Protects the references called directly: linear scans return the inputs' (bfloat16)
    dtype, and selective_scan_ref defaults to no softplus and to y alone."""
    lin = {k: v.bfloat16() for k, v in linear_inputs(9, (3,), True).items()}
    for fn in (scan.linear_scan_ref, scan.linear_scan_parallel):
        assert fn(**lin).dtype == torch.bfloat16
    inputs, _ = selective_inputs(7, ("D",))
    y = scan.selective_scan_ref(**inputs)
    assert isinstance(y, torch.Tensor)
    torch.testing.assert_close(y, scan.selective_scan_ref(**inputs, delta_softplus=False,
                                                          return_last_state=False),
                               rtol=0, atol=0)


def test_check_messages_list_dtypes_shapes_and_devices():
    """Protects the shared checks' messages: the dtypes allowed, listed by name; z's and h0's
    shapes; A and b on another device than the first input."""
    inputs, _ = selective_inputs(5, ("z",))
    with pytest.raises(TypeError, match=r"^u must be a real floating-point tensor, got dtype "
                                        r"torch.int64 \(one of float16, bfloat16, float32, "
                                        r"float64\)$"):
        scan.selective_scan(**{**inputs, "u": inputs["u"].long()})
    with pytest.raises(ValueError, match=r"^z must have shape \(b, l, d\) = \(2, 5, 3\), got "
                                         r"\(2, 5, 2\)$"):
        scan.selective_scan(**{**inputs, "z": torch.ones(2, 5, 2)})
    with pytest.raises(ValueError, match="^A is on meta but the first input is on cpu; put all "
                                         "inputs on one device$"):
        scan.selective_scan(**{**inputs, "A": inputs["A"].to("meta")})
    lin = linear_inputs(5, (2,), True)
    with pytest.raises(ValueError, match="^b is on meta but the first input is on cpu"):
        scan.linear_scan_ref(lin["a"], lin["b"].to("meta"))
    with pytest.raises(ValueError, match=r"^h0 must have shape \(batch, \.\.\.\) = "
                                         r"\(a\.shape\[0\], a\.shape\[2:\]\) = \(2, 2\), "
                                         r"got \(2, 3\)$"):
        scan.linear_scan_ref(lin["a"], lin["b"], torch.ones(2, 3))


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_cpu_tasks_split_the_work_as_documented(two_threads):
    """Protects the cpu backend's split of the work: every (sequence, channel) exactly once,
    per_thread = 2 tasks per thread when the batch is small (here 2 threads, one sequence:
    4 tasks), and no task wider than max_width = 256 channels."""
    def covered(tasks, batch, channels):
        seen = np.zeros((batch, channels), dtype=int)
        for i, _, c0, c1 in tasks:
            seen[i, c0:c1] += 1
        return (seen == 1).all()

    assert len(scan.cpu._tasks(1, 64)) == 4 and covered(scan.cpu._tasks(1, 64), 1, 64)
    for batch, channels in ((2, 600), (8, 514), (3, 5), (8, 1)):
        tasks = scan.cpu._tasks(batch, channels)
        assert covered(tasks, batch, channels)
        assert max(c1 - c0 for _, _, c0, c1 in tasks) <= 256
        assert len(tasks) >= min(4, batch * channels)
        blocks = {blk for _, blk, _, _ in tasks}
        assert blocks == set(range(len(blocks)))  # block ids 0.. index the partial sums


@pytest.mark.skipif("cpu" not in scan.BACKENDS, reason="needs numba")
def test_cpu_selective_scan_defaults():
    """Protects selective_scan_cpu's defaults: no softplus, y alone."""
    inputs, _ = selective_inputs(7, ("D",))
    y = scan.cpu.selective_scan_cpu(*inputs.values())
    assert isinstance(y, torch.Tensor)
    torch.testing.assert_close(y, scan.selective_scan_ref(**inputs), rtol=TOL, atol=TOL)
