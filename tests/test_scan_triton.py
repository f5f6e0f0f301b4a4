"""The Triton selective scan equals a float64 loop: outputs, last state and every gradient.

Without a GPU these tests run the real kernels in Triton's CPU interpreter, which executes
each operation as NumPy code one program at a time: the shapes are chosen to cover every
axis of the specification (L ∈ {1, 7, 64, 130, 300}; D not a multiple of the block;
N ∈ {1, 4, 16}; with and without D, z, delta_bias, softplus and the last state) without
taking the full cross-product. GPU-only tests (large shapes, fp16/bf16) are marked ``gpu``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

if importlib.util.find_spec("triton") is None:  # find, not import: sseq sets the interpreter up
    pytest.skip("triton is not installed", allow_module_level=True)
from sseq.scan import triton_kernel, triton_linear  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RTOL, ATOL = 6e-4, 2e-3  # fp32 against float64, the tolerances of the other backends
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def scan_loop(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The oracle: the recurrence one step at a time, in float64. Returns y and the last state."""
    u, delta, A, B, C = (x.double() for x in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.double()
    if delta_softplus:
        delta = F.softplus(delta)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])  # (b, d, n)
    ys = []
    for t in range(u.shape[1]):
        A_bar = torch.exp(delta[:, t, :, None] * A)
        h = A_bar * h + (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + D.double() * u
    if z is not None:
        y = y * F.silu(z.double())
    return y, h


def make_inputs(b, l, d, n, *, D=True, z=True, bias=True, softplus=True, dtype=torch.float32,
                seed=0):
    """Random inputs; without softplus, delta (+ bias) stays positive so the scan is stable."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, offset=0.0):
        x = offset + scale * torch.randn(*shape, generator=g)
        return x.to(DEVICE, dtype).requires_grad_()

    return dict(
        u=rand(b, l, d),
        delta=rand(b, l, d, scale=0.5, offset=-0.5) if softplus else
        (0.3 * torch.rand(b, l, d, generator=g) + 0.2).to(DEVICE, dtype).requires_grad_(),
        A=(-torch.rand(d, n, generator=g) * 2 - 0.1).to(DEVICE).requires_grad_(),
        B=rand(b, l, n), C=rand(b, l, n),
        D=rand(d) if D else None, z=rand(b, l, d) if z else None,
        delta_bias=(rand(d, scale=0.3) if softplus else
                    (0.1 * torch.rand(d, generator=g)).to(DEVICE, dtype).requires_grad_())
        if bias else None,
    )


def outputs_and_grads(fn, inputs, seed=1):
    """y, last state, and the gradient of a random linear function of both."""
    y, last = fn(**inputs)
    g = torch.Generator().manual_seed(seed)  # the same upstream gradients for every fn:
    gy = torch.randn(y.shape, generator=g).to(y.device, inputs["u"].dtype)  # in u's dtype
    glast = torch.randn(last.shape, generator=g).to(last.device)
    loss = (y * gy).sum() + (last * glast).sum()
    tensors = {k: v for k, v in inputs.items() if v is not None}
    grads = torch.autograd.grad(loss, list(tensors.values()))
    return y, last, dict(zip(tensors, grads, strict=True))


def assert_matches_loop(inputs, softplus, rtol=RTOL, atol=ATOL):
    def triton_fn(**kw):
        return triton_kernel.selective_scan_triton(**kw, delta_softplus=softplus,
                                                 return_last_state=True)

    def loop_fn(**kw):
        return scan_loop(**kw, delta_softplus=softplus)

    y, last, grads = outputs_and_grads(triton_fn, inputs)
    y_ref, last_ref, grads_ref = outputs_and_grads(loop_fn, inputs)
    assert y.dtype == inputs["u"].dtype and last.dtype == torch.float32
    torch.testing.assert_close(y.double(), y_ref, rtol=rtol, atol=atol)
    torch.testing.assert_close(last.double(), last_ref, rtol=rtol, atol=atol)
    for name in grads:
        torch.testing.assert_close(grads[name].double(), grads_ref[name].double(), rtol=rtol,
                                   atol=atol, msg=lambda m, name=name: f"d{name}: {m}")


# (b, l, d, n, D, z, delta_bias, softplus): each axis of the specification is covered.
CASES = [
    (2, 1, 5, 4, True, True, True, True),
    (2, 7, 6, 1, False, False, False, False),
    (2, 9, 6, 16, True, True, True, True),
    (1, 64, 3, 16, False, True, False, True),
    (1, 130, 5, 4, True, False, True, False),
    (1, 300, 3, 1, True, True, True, True),
]


@pytest.mark.parametrize("b, l, d, n, D, z, bias, softplus", CASES)
def test_selective_scan_matches_float64_loop(b, l, d, n, D, z, bias, softplus):
    inputs = make_inputs(b, l, d, n, D=D, z=z, bias=bias, softplus=softplus)
    assert_matches_loop(inputs, softplus)


# Launch parameters other than the interpreter's defaults: the first kernels, forward chunks
# shorter and longer than the backward's, several channel blocks, n unrolled in the backward.
OTHER_CONFIGS = {
    "first kernels": dict(version=1),
    "short forward chunks": dict(chunk_fwd=4, chunk=8),
    "long forward chunks": dict(chunk_fwd=32, chunk=16, block_d=2),
    "n unrolled in the backward": dict(unroll_n=1, unroll_n_bwd=16, chunk_fwd=8, chunk=4),
}


@pytest.mark.parametrize("name", OTHER_CONFIGS)
def test_other_launch_configurations_match_the_loop(name):
    changed = dataclasses.replace(triton_kernel._config(), **OTHER_CONFIGS[name])
    for b, l, d, n, D, z, bias, softplus in [(2, 37, 5, 4, True, True, True, True),
                                              (1, 70, 3, 16, False, False, False, False)]:
        inputs = make_inputs(b, l, d, n, D=D, z=z, bias=bias, softplus=softplus)
        with triton_kernel.use_config(changed):  # the backward pass keeps it outside too
            assert_matches_loop(inputs, softplus)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_small(dtype):
    """Half inputs are read as they are and accumulated in fp32 (large shapes: GPU tests)."""
    inputs = make_inputs(1, 23, 5, 4, dtype=dtype)
    tol = dict(float16=(5e-3, 1e-2), bfloat16=(3e-2, 5e-2))[str(dtype).split(".")[1]]
    assert_matches_loop(inputs, softplus=True, rtol=tol[0], atol=tol[1])


@pytest.mark.parametrize("n", [64, 256])
def test_large_state_sizes(n):
    """N up to 256: the state tiles are then too large to unroll the loop over n."""
    inputs = make_inputs(1, 11, 3, n)
    assert_matches_loop(inputs, softplus=True)


def test_gradient_of_delta_keeps_its_own_dtype():
    """∂δ is computed in fp32 and returned in δ's dtype, whatever u's dtype is."""
    inputs = make_inputs(1, 9, 3, 4, dtype=torch.bfloat16)
    inputs["delta"] = inputs["delta"].detach().float().requires_grad_()
    y = triton_kernel.selective_scan_triton(**inputs, delta_softplus=True)
    (ddelta,) = torch.autograd.grad(y.float().sum(), [inputs["delta"]])
    y_ref, _ = scan_loop(**inputs, delta_softplus=True)
    (ddelta_ref,) = torch.autograd.grad(y_ref.sum(), [inputs["delta"]])
    assert ddelta.dtype == torch.float32
    torch.testing.assert_close(ddelta.double(), ddelta_ref.double(), rtol=3e-2, atol=5e-2)
    assert not torch.equal(ddelta, ddelta.bfloat16().float())  # not rounded through bf16


def _spy_on_save_states(monkeypatch) -> list:
    """Record the ``save_states`` flag of every forward launch of the selective scan."""
    saved = []
    forward = triton_kernel._scan_forward

    def spy(*args):
        saved.append(args[9])  # save_states
        return forward(*args)

    monkeypatch.setattr(triton_kernel, "_scan_forward", spy)
    return saved


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "grad"])
def test_states_are_saved_only_when_a_backward_pass_can_follow(mode, monkeypatch):
    saved = _spy_on_save_states(monkeypatch)
    inputs = make_inputs(1, 5, 2, 2)  # every input requires a gradient
    context = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode,
               "grad": torch.enable_grad}[mode]
    with context():
        triton_kernel.selective_scan_triton(**inputs)
    assert saved == [mode == "grad"]


def test_unknown_kernel_version_is_a_clear_error():
    with triton_kernel.use_config(dataclasses.replace(triton_kernel._config(), version=3)):
        with pytest.raises(ValueError, match="KernelConfig.version must be 1 or 2"):
            triton_kernel.selective_scan_triton(**make_inputs(1, 3, 2, 2))
    with pytest.raises(TypeError, match="config must be a KernelConfig"):
        with triton_kernel.use_config({"version": 1}):
            pass


def test_a_backward_pass_keeps_the_configuration_of_its_forward_pass(monkeypatch):
    used = []
    backward = triton_kernel._scan_backward
    monkeypatch.setattr(triton_kernel, "_scan_backward",
                        lambda saved, softplus, g, dlast, cfg: used.append(cfg) or
                        backward(saved, softplus, g, dlast, cfg))
    inputs = make_inputs(1, 6, 2, 2)
    first = dataclasses.replace(triton_kernel._config(), version=1)
    with triton_kernel.use_config(first):
        y = triton_kernel.selective_scan_triton(**inputs)
    y.sum().backward()
    assert used == [first] and triton_kernel._config() != first


def test_without_last_state_returns_only_y():
    inputs = make_inputs(2, 5, 3, 2, softplus=False)
    inputs = {k: v.detach() for k, v in inputs.items()}
    y = triton_kernel.selective_scan_triton(**inputs)
    y_ref, _ = scan_loop(**inputs)
    assert isinstance(y, torch.Tensor)
    torch.testing.assert_close(y.double(), y_ref, rtol=RTOL, atol=ATOL)


def test_gradient_of_the_last_state_alone():
    inputs = make_inputs(1, 11, 3, 4, D=False, z=False, bias=False, softplus=False)
    _, last = triton_kernel.selective_scan_triton(**inputs, return_last_state=True)
    grads = torch.autograd.grad(last.sum(), [inputs["u"], inputs["A"]])
    _, last_ref = scan_loop(**inputs)
    grads_ref = torch.autograd.grad(last_ref.sum(), [inputs["u"], inputs["A"]])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g.double(), g_ref.double(), rtol=RTOL, atol=ATOL)


def test_adjoint_runs_backwards_in_time():
    """A loss on y at one time t0 reaches inputs at t <= t0 only: the flipped scan is causal.

    Run the other way round (a reversed scan with its operands swapped), gradients would leak
    to t > t0 or miss t < t0.
    """
    l, t0 = 40, 21  # t0 inside the third chunk of the interpreter's 8 steps
    inputs = make_inputs(1, l, 3, 4, D=False, z=False, bias=False, softplus=False)
    y = triton_kernel.selective_scan_triton(**inputs)
    (du,) = torch.autograd.grad(y[0, t0].sum(), [inputs["u"]])
    assert torch.all(du[0, t0 + 1:] == 0)
    assert torch.all(du[0, : t0 + 1].abs().sum(-1) > 0)
    y_ref, _ = scan_loop(**inputs)
    (du_ref,) = torch.autograd.grad(y_ref[0, t0].sum(), [inputs["u"]])
    torch.testing.assert_close(du.double(), du_ref.double(), rtol=RTOL, atol=ATOL)


# --- regression tests of issue 9: softplus far from 0, float64, A = −inf -----------------------

KERNEL_VERSIONS = {"current kernels": {}, "first kernels": dict(version=1)}


@pytest.mark.parametrize("version", KERNEL_VERSIONS)
def test_softplus_is_accurate_far_below_zero(version):
    """Δ = softplus(δ + bias) for δ + bias from −30 to 30, read out exactly: at L = 1 with
    u = B = C = 1, y_0 = Δ_0 (and ∂y/∂δ = σ(δ + bias)). log(1 + e^x) in float32 loses every
    digit of e^x below x ≈ −17 (1 + e^x rounds to 1); torch's softplus does not."""
    x = torch.arange(-30.0, 30.5, 0.5, dtype=torch.float64)  # δ + bias, one channel each
    d = x.numel()
    delta = (x - 0.25).float().to(DEVICE).requires_grad_()  # the bias 0.25 is exact in float32
    inputs = dict(u=torch.ones(1, 1, d), delta=delta[None, None], A=-torch.ones(d, 1),
                  B=torch.ones(1, 1, 1), C=torch.ones(1, 1, 1), delta_bias=torch.full((d,), 0.25))
    inputs = {k: v.to(DEVICE) for k, v in inputs.items()}
    config = dataclasses.replace(triton_kernel._config(), **KERNEL_VERSIONS[version])
    with triton_kernel.use_config(config):
        y = triton_kernel.selective_scan_triton(**inputs, delta_softplus=True)
        (ddelta,) = torch.autograd.grad(y.sum(), [delta])
    # float32 holds softplus to a few ulp: relative 1e-6 (the other backends agree to 2e-7).
    torch.testing.assert_close(y[0, 0].double().cpu(), F.softplus(x), rtol=1e-6, atol=0)
    torch.testing.assert_close(ddelta.double().cpu(), torch.sigmoid(x), rtol=1e-6, atol=0)


def float64_inputs(b=1, l=11, d=3, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = make_inputs(b, l, d, n, dtype=torch.float64, seed=seed)
    inputs["A"] = (-torch.rand(d, n, generator=g, dtype=torch.float64) - 0.1).to(DEVICE)
    return {k: v.detach().requires_grad_() for k, v in inputs.items()}


@pytest.mark.parametrize("version", KERNEL_VERSIONS)
def test_float64_inputs_are_computed_in_float64(version):
    """float64 in, float64 arithmetic: y and the last state in float64, equal to the float64
    loop to 1e-12 (a float32 computation is off by about 1e-7), gradients likewise."""
    inputs = float64_inputs()
    config = dataclasses.replace(triton_kernel._config(), **KERNEL_VERSIONS[version])
    with triton_kernel.use_config(config):
        y, last, grads = outputs_and_grads(
            lambda **kw: triton_kernel.selective_scan_triton(**kw, delta_softplus=True,
                                                           return_last_state=True), inputs)
    y_ref, last_ref, grads_ref = outputs_and_grads(
        lambda **kw: scan_loop(**kw, delta_softplus=True), inputs)
    assert y.dtype == last.dtype == torch.float64
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last, last_ref, rtol=1e-12, atol=1e-12)
    for name in grads:
        assert grads[name].dtype == torch.float64, name
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-12, atol=1e-12,
                                   msg=lambda m, name=name: f"d{name}: {m}")


@pytest.mark.parametrize("version", KERNEL_VERSIONS)
def test_float64_gradcheck(version):
    inputs = float64_inputs(b=1, l=5, d=2, n=2)
    config = dataclasses.replace(triton_kernel._config(), **KERNEL_VERSIONS[version])

    def fn(*args):
        y, last = triton_kernel.selective_scan_triton(*args, delta_softplus=True,
                                                    return_last_state=True)
        return y, last

    with triton_kernel.use_config(config):
        assert torch.autograd.gradcheck(fn, tuple(inputs.values()), eps=1e-6, atol=1e-8)


def test_float64_linear_scan_gradcheck():
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(2, 9, 3, generator=g, dtype=torch.float64) for _ in range(2))
    h0 = torch.randn(2, 3, generator=g, dtype=torch.float64)
    a, b, h0 = (x.to(DEVICE).requires_grad_() for x in (a, b, h0))
    h = triton_linear.linear_scan_triton(a, b, h0)
    assert h.dtype == torch.float64
    torch.testing.assert_close(h, linear_loop(a, b, h0), rtol=1e-13, atol=1e-13)
    assert torch.autograd.gradcheck(triton_linear.linear_scan_triton, (a, b, h0))


@pytest.mark.parametrize("version", KERNEL_VERSIONS)
def test_minus_infinite_A_gives_the_reference_results(version):
    """A = −inf (a mode that forgets at once, A_bar = 0) in a length that leaves the last
    chunk part empty: the padded steps (Δ = 0) must leave the state as it is, not compute
    exp(0 · −inf) = NaN. Everything equals the reference backend, NaN where autograd gives
    the reference NaN (∂δ and ∂bias of that channel: ∂A_bar/∂Δ = A · exp(ΔA) = −inf · 0)."""
    scan = pytest.importorskip("sseq.scan")
    inputs = make_inputs(2, 13, 3, 4, softplus=True)
    A = inputs["A"].detach().clone()
    A[1, 2] = -float("inf")
    inputs["A"] = A.requires_grad_()
    kwargs = dict(delta_softplus=True, return_last_state=True)
    config = dataclasses.replace(triton_kernel._config(), **KERNEL_VERSIONS[version])
    # The interpreter computes the NaN of ∂δ with NumPy, which warns; the warning is expected.
    with triton_kernel.use_config(config), np.errstate(invalid="ignore"):
        y, last, grads = outputs_and_grads(
            lambda **kw: scan.selective_scan(**kw, **kwargs, backend="triton"), inputs)
    y_ref, last_ref, grads_ref = outputs_and_grads(
        lambda **kw: scan.selective_scan(**kw, **kwargs, backend="reference"), inputs)
    assert torch.isfinite(y).all() and torch.isfinite(last).all()
    torch.testing.assert_close(y, y_ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(last, last_ref, rtol=RTOL, atol=ATOL)
    for name in grads:
        finite = name not in ("delta", "delta_bias")
        assert not finite or torch.isfinite(grads[name]).all(), name
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=RTOL, atol=ATOL,
                                   equal_nan=True, msg=lambda m, name=name: f"d{name}: {m}")
    assert torch.isfinite(grads["delta"][:, :, [0, 2]]).all()  # only channel 1 has A = −inf


def test_second_order_gradients_are_refused():
    """The kernels' backward passes are opaque to autograd: under create_graph=True they say
    so (issue 9: they returned first-order gradients that silently did not require grad, so a
    second derivative through them came out absent or zero)."""
    inputs = make_inputs(1, 6, 2, 2)
    y = triton_kernel.selective_scan_triton(**inputs, delta_softplus=True)
    refused = "backend='triton' computes first-order gradients only"
    with pytest.raises(RuntimeError, match=refused):
        torch.autograd.grad(y.square().sum(), [inputs["u"]], create_graph=True)
    a, b = (torch.rand(1, 5, 2, device=DEVICE, requires_grad=True) for _ in range(2))
    with pytest.raises(RuntimeError, match=refused):
        torch.autograd.grad(triton_linear.linear_scan_triton(a, b).square().sum(), [a],
                            create_graph=True)


def linear_loop(a, b, h0=None):
    h = torch.zeros_like(b[:, 0], dtype=torch.float64) if h0 is None else h0.double()
    hs = []
    for t in range(b.shape[1]):
        h = a[:, t].double() * h + b[:, t].double()
        hs.append(h)
    return torch.stack(hs, dim=1)


@pytest.mark.parametrize("shape, with_h0",
                         [((2, 13, 3, 2), True), ((1, 20, 5), False), ((1, 17, 19), True)])
def test_linear_scan_matches_loop(shape, with_h0):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(shape, generator=g).to(DEVICE).requires_grad_()
    b = torch.randn(shape, generator=g).to(DEVICE).requires_grad_()
    h0 = torch.randn(shape[:1] + shape[2:], generator=g).to(DEVICE).requires_grad_() \
        if with_h0 else None
    h, h_ref = triton_linear.linear_scan_triton(a, b, h0), linear_loop(a, b, h0)
    assert h.shape == shape
    torch.testing.assert_close(h.double(), h_ref, rtol=RTOL, atol=ATOL)
    gh = torch.randn(shape, generator=g).to(DEVICE)
    leaves = [x for x in (a, b, h0) if x is not None]
    grads = torch.autograd.grad((h * gh).sum(), leaves)
    grads_ref = torch.autograd.grad((h_ref * gh.double()).sum(), leaves)
    for x, x_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(x.double(), x_ref.double(), rtol=RTOL, atol=ATOL)


def test_linear_scan_rejects_complex_inputs():
    a = torch.ones(1, 3, 2, dtype=torch.complex64, device=DEVICE)
    with pytest.raises(TypeError, match="real-only"):
        triton_linear.linear_scan_triton(a, a)


class TinyMambaMixer(torch.nn.Module):
    """Mamba's selective-scan mixer, without the short convolution: enough for a training step."""

    def __init__(self, d_model=4, d_inner=6, d_state=4, dt_rank=2):
        super().__init__()
        self.in_proj = torch.nn.Linear(d_model, 2 * d_inner)
        self.x_proj = torch.nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = torch.nn.Linear(dt_rank, d_inner)
        A = torch.arange(1.0, d_state + 1).repeat(d_inner, 1)  # (d_inner, n), S4D-real
        self.A_log = torch.nn.Parameter(torch.log(A))
        self.D = torch.nn.Parameter(torch.ones(d_inner))
        self.out_proj = torch.nn.Linear(d_inner, d_model)
        self.sizes = (dt_rank, d_state, d_state)

    def forward(self, x, scan):
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (b, l, d_inner) each
        u = F.silu(u)
        dt, B, C = self.x_proj(u).split(self.sizes, dim=-1)
        delta = dt @ self.dt_proj.weight.T  # (b, l, d_inner); the bias goes in as delta_bias
        y = scan(u, delta, -torch.exp(self.A_log), B, C, self.D, z, self.dt_proj.bias, True)
        return self.out_proj(y)


def test_training_step_matches_the_loop():
    """forward, backward and an SGD step through the Triton scan give the loop's parameters."""
    torch.manual_seed(0)
    model = TinyMambaMixer().to(DEVICE)
    twin = TinyMambaMixer().to(DEVICE)
    twin.load_state_dict(model.state_dict())
    x, target = torch.randn(2, 12, 4, device=DEVICE), torch.randn(2, 12, 4, device=DEVICE)

    def triton_scan(*args):
        return triton_kernel.selective_scan_triton(*args)

    def loop_scan(*args):
        return scan_loop(*args)[0].float()

    losses = []
    for net, scan in ((model, triton_scan), (twin, loop_scan)):
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        loss = F.mse_loss(net(x, scan), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(F.mse_loss(net(x, scan), target).item())
        assert losses[-1] < loss.item()  # one step downhill
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=RTOL, atol=ATOL)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter is for CPU-only machines")
def test_interpreter_is_on_without_cuda():
    assert triton_kernel.INTERPRETED


def test_importing_sseq_does_not_import_triton():
    code = "import sys, sseq; print('triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter is for CPU-only machines")
def test_clear_error_when_triton_was_imported_without_the_interpreter():
    """Triton's own library functions were then made for the GPU: the kernels could not run."""
    code = "import triton\nfrom sseq.scan import triton_kernel"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "set TRITON_INTERPRET=1" in out.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter is for CPU-only machines")
def test_interpreter_works_after_pytorch_imported_triton():
    """seed_everything -> torch.use_deterministic_algorithms imports Triton via torch._dynamo."""
    code = ("import sys, torch, sseq\n"
            "sseq.seed_everything(0)\n"
            "assert 'triton' in sys.modules\n"
            "u = torch.randn(1, 5, 2)\n"
            "y = sseq.scan.linear_scan(torch.full_like(u, 0.5), u, backend='triton')\n"
            "ref = sseq.scan.linear_scan(torch.full_like(u, 0.5), u, backend='reference')\n"
            "print(torch.allclose(y, ref, atol=1e-6))")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "True", out.stderr[-2000:]


def test_scan_api_triton_backend_matches_reference():
    scan = pytest.importorskip("sseq.scan")
    inputs = make_inputs(2, 19, 5, 4)
    kwargs = dict(delta_softplus=True, return_last_state=True)
    y, last, grads = outputs_and_grads(
        lambda **kw: scan.selective_scan(**kw, **kwargs, backend="triton"), inputs)
    y_ref, last_ref, grads_ref = outputs_and_grads(
        lambda **kw: scan.selective_scan(**kw, **kwargs, backend="reference"), inputs)
    torch.testing.assert_close(y, y_ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(last, last_ref, rtol=RTOL, atol=ATOL)
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=RTOL, atol=ATOL)


def test_scan_api_linear_scan_triton_matches_reference():
    scan = pytest.importorskip("sseq.scan")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 11, 3, generator=g).to(DEVICE)
    b = torch.randn(2, 11, 3, generator=g).to(DEVICE)
    h0 = torch.randn(2, 3, generator=g).to(DEVICE)
    h, h_ref = (scan.linear_scan(a, b, h0, backend=name) for name in ("triton", "reference"))
    torch.testing.assert_close(h, h_ref, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------------------------
# On a GPU: large shapes, every chunk and block size in play, and half precision.
# ---------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("b, l, d, n", [(2, 1000, 300, 16), (1, 333, 70, 64), (1, 77, 9, 256)])
def test_gpu_large_shapes(b, l, d, n):
    inputs = make_inputs(b, l, d, n)
    assert_matches_loop(inputs, softplus=True)


@pytest.mark.gpu
@pytest.mark.parametrize("b, l, d, n", [(2, 1000, 300, 16), (1, 77, 9, 256)])
def test_gpu_first_kernels_large_shapes(b, l, d, n):
    with triton_kernel.use_config(triton_kernel.V1_CONFIG):
        assert_matches_loop(make_inputs(b, l, d, n), softplus=True)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gpu_half_precision_inputs(dtype):
    """Half inputs, fp32 accumulation: the error is the output's rounding, not the scan's."""
    inputs = make_inputs(2, 500, 100, 16, dtype=dtype)
    tol = dict(float16=(5e-3, 1e-2), bfloat16=(3e-2, 5e-2))[str(dtype).split(".")[1]]
    assert_matches_loop(inputs, softplus=True, rtol=tol[0], atol=tol[1])


# ---------------------------------------------------------------------------------------------
# The launchers (issue 18): what reaches the kernels, checked on the launch arguments.
# The interpreter ignores num_warps and accepts arguments a GPU launch would refuse, so these
# tests read the arguments of each launch instead of only the results.
# ---------------------------------------------------------------------------------------------

from sseq.scan import triton_common, triton_kernel_v1  # noqa: E402


def spy_launches(monkeypatch, module):
    """Record (kernel, grid, args, constants) of every launch ``module`` makes, then launch."""
    calls, launch = [], module._launch

    def spy(kernel, grid, *args, **constants):
        calls.append((kernel, grid, args, constants))
        return launch(kernel, grid, *args, **constants)

    monkeypatch.setattr(module, "_launch", spy)
    return calls


class _Checked(Exception):
    pass


def spy_device_check(monkeypatch, module):
    """Record the tensors ``module`` hands to _check_device, and stop there."""
    seen = []

    def check(*tensors):
        seen.append(tensors)
        raise _Checked

    monkeypatch.setattr(module, "_check_device", check)
    return seen


def test_every_input_has_its_device_checked(monkeypatch):
    """Both entry points check the device of every tensor they are given (called directly,
    nothing checked them before), not only the first ones."""
    seen = spy_device_check(monkeypatch, triton_linear)
    a, b, h0 = torch.ones(1, 3, 2), torch.ones(1, 3, 2), torch.ones(1, 2)
    with pytest.raises(_Checked):
        triton_linear.linear_scan_triton(a, b, h0)
    assert len(seen) == 1 and len(seen[0]) == 3
    assert all(x is y for x, y in zip(seen[0], (a, b, h0), strict=True))
    seen = spy_device_check(monkeypatch, triton_kernel)
    inputs = make_inputs(1, 3, 2, 2)
    with pytest.raises(_Checked):
        triton_kernel.selective_scan_triton(**inputs)
    assert len(seen) == 1 and len(seen[0]) == len(NAMES)
    assert all(x is inputs[name] for x, name in zip(seen[0], NAMES, strict=True))


def test_check_device_names_the_device_it_needs(monkeypatch):
    """In the interpreter the kernels need CPU tensors, compiled they need CUDA tensors; the
    error says which, and where the tensor was. None is skipped; compile-only checks nothing."""
    cuda_like = type("CudaLike", (), dict(is_cuda=True, device=torch.device("cuda", 0)))()
    cpu = torch.ones(2)
    monkeypatch.setattr(triton_common, "COMPILE_ONLY", False)
    monkeypatch.setattr(triton_common, "INTERPRETED", True)
    assert triton_common._check_device(cpu, None, cpu) is None
    with pytest.raises(ValueError) as err:
        triton_common._check_device(cpu, None, cuda_like)
    assert str(err.value) == ("the Triton backend here needs CPU tensors (Triton's interpreter); "
                              "got a tensor on cuda:0")
    monkeypatch.setattr(triton_common, "INTERPRETED", False)
    assert triton_common._check_device(None, cuda_like) is None
    with pytest.raises(ValueError) as err:
        triton_common._check_device(cuda_like, cpu)
    assert str(err.value) == "the Triton backend here needs CUDA tensors; got a tensor on cpu"
    monkeypatch.setattr(triton_common, "COMPILE_ONLY", True)  # meta tensors, nothing launched
    assert triton_common._check_device(cpu, cuda_like) is None


def test_use_config_nests_and_restores(monkeypatch):
    """use_config yields its configuration, the innermost one wins, and leaving a block (also
    by an exception) restores the one outside it; without one, the interpreter's small blocks
    or the GPU's defaults apply."""
    monkeypatch.setattr(triton_common, "INTERPRETED", True)
    assert triton_common._config() is triton_common.INTERPRETER_CONFIG
    monkeypatch.setattr(triton_common, "INTERPRETED", False)
    assert triton_common._config() is triton_common.GPU_CONFIG
    outer, inner = triton_common.KernelConfig(chunk=4), triton_common.KernelConfig(chunk=2)
    with triton_common.use_config(outer) as got:
        assert got is outer and triton_common._config() is outer
        with pytest.raises(KeyError), triton_common.use_config(inner):
            assert triton_common._config() is inner
            raise KeyError
        assert triton_common._config() is outer
    assert triton_common._config() is triton_common.GPU_CONFIG
    with pytest.raises(TypeError) as err, triton_common.use_config({"version": 1}):
        pass
    assert str(err.value) == "config must be a KernelConfig, got dict"


def test_launch_turns_integers_into_constants_only_in_the_interpreter(monkeypatch):
    """Triton 3.6's interpreter cannot bound a loop by a NumPy array: there (and only there)
    the integer arguments go in as tl.constexpr; tensors, floats, bools and constants as given."""
    calls = []

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **kw: calls.append((grid, args, kw)) or "launched"

    x = torch.ones(2)
    for interpreted in (True, False):
        monkeypatch.setattr(triton_common, "INTERPRETED", interpreted)
        out = triton_common._launch(Kernel(), (3, 1), x, 7, 0.5, True, BLOCK=4, num_warps=2)
        assert out == "launched"
        grid, args, kw = calls.pop()
        assert grid == (3, 1) and args[0] is x and args[2:] == (0.5, True)
        assert type(args[2]) is float and args[3] is True
        assert kw == dict(BLOCK=4, num_warps=2)
        if interpreted:
            assert isinstance(args[1], triton_common.tl.constexpr) and args[1].value == 7
        else:
            assert type(args[1]) is int and args[1] == 7


def test_small_launch_helpers():
    """_pow2 rounds up to a power of two (at least 1); the kernels compute in float64 for
    float64 u and in float32 otherwise; _flags says which optional inputs are there."""
    assert [triton_common._pow2(x) for x in (-3, 0, 1, 2, 3, 5, 8, 9, 16.0)] == \
        [1, 1, 1, 2, 4, 8, 8, 16, 16]
    dtypes = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
    assert [triton_common._compute_dtype(torch.ones(1, dtype=t)) for t in dtypes] == \
        [torch.float64, torch.float32, torch.float32, torch.float32]
    tl_ = triton_common.tl
    u, d = torch.ones(1, dtype=torch.float16), torch.ones(1)
    assert triton_common._flags(u, None, None, None, 0, 5) == dict(
        HAS_D=False, HAS_Z=False, HAS_BIAS=False, SOFTPLUS=False, BLOCK_N=8, ACC=tl_.float32)
    flags = triton_common._flags(u.double(), d, d, d, 1, 16)
    assert flags == dict(HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=True, BLOCK_N=16,
                         ACC=tl_.float64)
    assert flags["SOFTPLUS"] is True  # a constexpr bool, not the int 1


@pytest.mark.parametrize("with_z", [False, True])
def test_gradient_buffers_shapes_and_dtypes(with_z):
    """∂u, ∂δ, ∂z are shaped and typed like u, δ, z; ∂A (b, d, n), ∂B and ∂C per block
    (blocks, b, l, n) and ∂D, ∂bias (b, d) in the compute dtype; all distinct tensors."""
    b, l, d, n, blocks = 2, 5, 3, 4, 6
    u = torch.ones(b, l, d, dtype=torch.float16)
    delta = torch.ones(b, l, d, dtype=torch.bfloat16)
    z = torch.ones(b, l, d, dtype=torch.float64) if with_z else None
    du, ddelta, dz, dA, dB, dC, dD, dbias = triton_common._gradient_buffers(u, delta, z, n,
                                                                            blocks)
    assert (du.shape, du.dtype) == ((b, l, d), torch.float16)
    assert (ddelta.shape, ddelta.dtype) == ((b, l, d), torch.bfloat16)
    assert dz is None if z is None else (dz.shape, dz.dtype) == ((b, l, d), torch.float64)
    shapes = [(b, d, n), (blocks, b, l, n), (blocks, b, l, n), (b, d), (b, d)]
    for x, shape in zip((dA, dB, dC, dD, dbias), shapes, strict=True):
        assert (tuple(x.shape), x.dtype, x.device) == (shape, torch.float32, u.device)
    buffers = [x for x in (du, ddelta, dz, dA, dB, dC, dD, dbias) if x is not None]
    assert len({x.data_ptr() for x in buffers}) == len(buffers)
    assert triton_common._gradient_buffers(u.double(), delta, z, n, 1)[3].dtype == torch.float64


def test_first_order_only_refuses_create_graph_in_full():
    """The refusal names the backend and the backends that can differentiate twice."""
    with torch.no_grad():
        assert triton_common._first_order_only("triton") is None
    with pytest.raises(RuntimeError) as err:
        triton_common._first_order_only("cpu")
    assert str(err.value) == (
        "backend='cpu' computes first-order gradients only: its backward pass is compiled "
        "code that autograd cannot differentiate. For second-order gradients "
        "(create_graph=True) use backend='reference' or 'parallel'")


@pytest.mark.parametrize("features, block_linear, block, warps, with_h0",
                         [(5, 8, 8, 1, False), (200, 128, 128, 4, True)])
def test_linear_scan_launch_arguments(monkeypatch, features, block_linear, block, warps,
                                      with_h0):
    """Each linear-scan launch gets one program per (batch element, block of features), one
    warp per 32 features (an int: a GPU launch refuses 4.0 or 3 warps), the chunk of the
    configuration, and a tensor for every pointer (the absent h0/∂h0 stand-ins included:
    compile_report types each pointer by its dtype)."""
    calls = spy_launches(monkeypatch, triton_linear)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, features, generator=g), torch.randn(2, 3, features, generator=g)
    h0 = torch.randn(2, features, generator=g) if with_h0 else None
    leaves = [x.requires_grad_() for x in (a, b, h0) if x is not None]
    config = dataclasses.replace(triton_common._config(), block_linear=block_linear, chunk=2)
    with triton_common.use_config(config):
        h = triton_linear.linear_scan_triton(a, b, h0)
    torch.autograd.grad(h.sum(), leaves)
    kernels = [triton_linear._linear_scan_fwd_kernel, triton_linear._linear_scan_bwd_kernel]
    assert [call[0] for call in calls] == kernels
    for (_, grid, args, constants), n_pointers in zip(calls, (4, 7), strict=True):
        assert grid == (2, -(-features // block))
        assert all(isinstance(x, torch.Tensor) for x in args[:n_pointers])
        assert args[n_pointers:] == (3, features)
        assert constants == dict(HAS_H0=with_h0, BLOCK=block, T=2,
                                 ACC=triton_common.tl.float32, num_warps=warps)
        assert type(constants["num_warps"]) is int


def test_float64_linear_scan_gradients_are_float64():
    """float64 in, float64 gradients: ∂a, ∂b, ∂h0 equal the float64 loop's to 1e-12 (rounded
    through float32 they would be off by about 1e-7)."""
    g = torch.Generator().manual_seed(1)
    a, b = (torch.rand(2, 9, 3, generator=g, dtype=torch.float64) for _ in range(2))
    h0 = torch.randn(2, 3, generator=g, dtype=torch.float64)
    leaves = [x.requires_grad_() for x in (a, b, h0)]
    gh = torch.randn(2, 9, 3, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((triton_linear.linear_scan_triton(a, b, h0) * gh).sum(), leaves)
    grads_ref = torch.autograd.grad((linear_loop(a, b, h0) * gh).sum(), leaves)
    for x, x_ref in zip(grads, grads_ref, strict=True):
        assert x.dtype == torch.float64
        torch.testing.assert_close(x, x_ref, rtol=1e-12, atol=1e-12)


def check_selective_launch(call, kernel, grid, inputs, n_pointers, ints, constants):
    """One recorded launch: kernel, grid, the inputs in order (B and C as the kernel wants them,
    a tensor for every absent one: zeros for D and the bias, which some kernels read whatever
    HAS_D / HAS_BIAS say), the sizes, and every constant (num_warps an int)."""
    got_kernel, got_grid, args, got = call
    assert got_kernel is kernel and got_grid == grid
    u = inputs["u"]
    assert args[0] is u and args[1] is inputs["delta"] and args[2] is inputs["A"]
    transposed = kernel in (triton_kernel._selective_scan_fwd_kernel,
                            triton_kernel._selective_scan_bwd_kernel)
    for x, name in zip(args[3:5], "BC", strict=True):
        want = inputs[name].transpose(1, 2) if transposed else inputs[name]
        assert x.is_contiguous() and torch.equal(x, want), name
    for x, name in zip((args[5], args[7]), ("D", "delta_bias"), strict=True):
        if inputs[name] is not None:
            assert x is inputs[name], name
        else:
            assert torch.equal(x, torch.zeros(u.shape[2])) and x.dtype == torch.float32, name
    assert args[6] is (u if inputs["z"] is None else inputs["z"])
    assert all(isinstance(x, torch.Tensor) for x in args[:n_pointers])
    assert args[n_pointers:] == ints
    assert got == constants and type(got["num_warps"]) is int


@pytest.mark.parametrize("absent", [False, True])
def test_selective_scan_launch_arguments(monkeypatch, absent):
    """The current kernels are launched with one program per (batch element, BLOCK_D
    channels), the configuration's chunks (forward and backward), warps and unrolling of the
    loop over n (n <= unroll_n: unrolled n times), and the flags of the optional inputs."""
    calls = spy_launches(monkeypatch, triton_kernel)
    b, l, d, n = 2, 5, 3, 4
    inputs = make_inputs(b, l, d, n, D=not absent, z=not absent, bias=not absent)
    config = triton_common.KernelConfig(block_d=2, warps=2, chunk_fwd=4, chunk=2,
                                        unroll_n=4 if absent else 3,
                                        unroll_n_bwd=3 if absent else 4)
    with triton_common.use_config(config):
        y, last = triton_kernel.selective_scan_triton(**inputs, delta_softplus=absent,
                                                      return_last_state=True)
    leaves = [x for x in inputs.values() if x is not None]
    # Without a loss on the last state, its gradient is absent (not a tensor of zeros).
    torch.autograd.grad(y.sum() if absent else y.sum() + last.sum(), leaves)
    flags = dict(HAS_D=not absent, HAS_Z=not absent, HAS_BIAS=not absent, SOFTPLUS=absent,
                 BLOCK_N=4, ACC=triton_common.tl.float32)
    assert len(calls) == 2
    check_selective_launch(calls[0], triton_kernel._selective_scan_fwd_kernel, (2, 2), inputs,
                           11, (l, d, n), flags | dict(
                               SAVE_STATES=True, BLOCK_D=2, T=4, SAVE_EVERY=2,
                               UNROLL_N=4 if absent else 1, num_warps=2))
    check_selective_launch(calls[1], triton_kernel._selective_scan_bwd_kernel, (2, 2), inputs,
                           19, (b, l, d, n), flags | dict(
                               HAS_DLAST=not absent, BLOCK_D=2, T=2,
                               UNROLL_N=1 if absent else 4, num_warps=2))
    args = calls[1][2]
    assert args[9].shape == (b, 3, n, d)  # the states entering every 2nd step: l / 2 chunks


def test_first_kernels_launch_arguments(monkeypatch):
    """The first kernels: forward with block_d and warps, backward with block_d_bwd and
    warps_bwd, each block cut down so its register tiles hold at most 4096 numbers."""
    calls = spy_launches(monkeypatch, triton_kernel_v1)
    b, l, d, n = 1, 5, 3, 4
    inputs = make_inputs(b, l, d, n, D=False, z=False, bias=False)
    config = dataclasses.replace(triton_kernel.V1_CONFIG, block_d=2, warps=8, chunk=2,
                                 block_d_bwd=1, warps_bwd=2)
    with triton_common.use_config(config):
        y = triton_kernel.selective_scan_triton(**inputs, delta_softplus=True)
    torch.autograd.grad(y.sum(), [x for x in inputs.values() if x is not None])
    flags = dict(HAS_D=False, HAS_Z=False, HAS_BIAS=False, SOFTPLUS=True)
    sizes = dict(BLOCK_N=4, CHUNK=2, ACC=triton_common.tl.float32)
    assert len(calls) == 2
    check_selective_launch(calls[0], triton_kernel_v1._selective_scan_fwd_stepwise_kernel,
                           (1, 2), inputs, 11, (l, d, n), flags | dict(
                               SAVE_STATES=True, BLOCK_D=2, **sizes, num_warps=8))
    check_selective_launch(calls[1], triton_kernel_v1._selective_scan_bwd_kernel, (1, 3),
                           inputs, 19, (b, l, d, n), flags | dict(
                               HAS_DLAST=False, BLOCK_D=1, **sizes, num_warps=2))


def test_first_kernels_block_d_keeps_tiles_within_the_budget():
    """_block_d: the preferred channels per program, fewer when a channel's tile is large (at
    most budget / elements channels), and at least one."""
    block_d = triton_kernel_v1._block_d
    assert block_d(32, 16, 4096) == 32
    assert block_d(32, 256, 4096) == 16
    assert block_d(16, 8 * 256, 4096) == 2
    assert block_d(16, 16 * 256, 4096) == 1
    assert block_d(16, 3000, 4096) == 1 and type(block_d(16, 3000, 4096)) is int
    assert block_d(16, 8192, 4096) == 1
    assert block_d(4, 1, 2) == 2


def test_inference_launch_passes_a_tensor_for_the_unsaved_states(monkeypatch):
    """Under no_grad nothing is saved (SAVE_STATES false), and the states' pointer is still a
    tensor (compile_report types every pointer by its dtype), for both kernel versions."""
    inputs = {k: None if v is None else v.detach() for k, v in make_inputs(1, 3, 2, 2).items()}
    for module, config in ((triton_kernel, triton_common.INTERPRETER_CONFIG),
                           (triton_kernel_v1, triton_kernel.V1_CONFIG)):
        calls = spy_launches(monkeypatch, module)
        with triton_common.use_config(config):
            triton_kernel.selective_scan_triton(**inputs)
        (_, _, args, constants), = calls
        assert constants["SAVE_STATES"] is False
        assert all(isinstance(x, torch.Tensor) for x in args[:11]) and args[11:] == (3, 2, 2)


def test_unknown_kernel_version_message_in_full():
    """The error names the field, the versions there are and the one given."""
    with triton_kernel.use_config(dataclasses.replace(triton_kernel._config(), version=3)):
        with pytest.raises(ValueError) as err:
            triton_kernel.selective_scan_triton(**make_inputs(1, 2, 2, 2))
    assert str(err.value) == "KernelConfig.version must be 1 or 2, got 3"


def test_gradient_when_only_one_input_requires_it():
    """States are saved when any input requires a gradient, not only when all do: ∂δ alone
    equals the loop's."""
    inputs = {k: None if v is None else v.detach() for k, v in make_inputs(1, 5, 2, 2).items()}
    inputs["delta"].requires_grad_()
    y = triton_kernel.selective_scan_triton(**inputs, delta_softplus=True)
    (ddelta,) = torch.autograd.grad(y.sum(), [inputs["delta"]])
    y_ref, _ = scan_loop(**inputs, delta_softplus=True)
    (ddelta_ref,) = torch.autograd.grad(y_ref.sum(), [inputs["delta"]])
    torch.testing.assert_close(ddelta.double(), ddelta_ref.double(), rtol=RTOL, atol=ATOL)


def test_first_kernels_cut_their_blocks_for_large_states(monkeypatch):
    """n = 200 (tiles of 256 rows): the first forward takes 4096 / 256 = 16 of its preferred
    32 channels per program, the backward (chunk 8: 2048 numbers a channel) 2 of its 16. The
    launches are recorded and stopped before the kernels run."""
    calls = []

    def record(kernel, grid, *args, **constants):
        calls.append((grid, constants))
        raise _Checked

    monkeypatch.setattr(triton_kernel_v1, "_launch", record)
    b, l, d, n = 1, 3, 5, 200
    inputs = {k: v.detach() for k, v in make_inputs(b, l, d, n, D=False, z=False,
                                                   bias=False).items() if v is not None}
    config = dataclasses.replace(triton_kernel.V1_CONFIG, block_d=32, chunk=8, block_d_bwd=16)
    with pytest.raises(_Checked):
        triton_kernel_v1.forward(**inputs, D=None, z=None, delta_bias=None, softplus=True,
                                 save_states=False, cfg=config)
    saved = (*inputs.values(), None, None, None, torch.zeros(b, 1, n, d))
    with pytest.raises(_Checked):
        triton_kernel_v1.backward(saved, True, torch.ones(b, l, d), None, config)
    (fwd_grid, fwd), (bwd_grid, bwd) = calls
    assert (fwd_grid, fwd["BLOCK_D"], fwd["BLOCK_N"]) == ((1, 1), 16, 256)
    assert (bwd_grid, bwd["BLOCK_D"], bwd["BLOCK_N"]) == ((1, 3), 2, 256)


def test_states_are_allocated_only_when_saved():
    """Without save_states the forward launcher allocates no states (None: at training sizes
    they are (b, l / chunk, n, d) numbers); with it, they are the states entering every
    chunk-th step: zero, then the loop's h_7 (the interpreter's chunk is 8 steps)."""
    inputs = {k: v.detach() for k, v in make_inputs(1, 10, 2, 3).items()}
    config = triton_common.INTERPRETER_CONFIG
    args = [inputs[name] for name in NAMES]
    _, _, states = triton_kernel._scan_forward(*args, True, False, config)
    assert states is None
    _, _, states = triton_kernel._scan_forward(*args, True, True, config)
    assert states.shape == (1, 2, 3, 2) and torch.all(states[:, 0] == 0)
    head = {k: v[:, :8] if k in ("u", "delta", "B", "C", "z") else v for k, v in inputs.items()}
    _, h7 = scan_loop(**head, delta_softplus=True)  # (b, d, n)
    torch.testing.assert_close(states[:, 1].transpose(1, 2).double(), h7, rtol=RTOL, atol=ATOL)


def test_nothing_is_saved_when_no_input_requires_a_gradient(monkeypatch):
    """Gradients enabled but no input requiring one: no backward pass can follow, so no
    states are saved."""
    saved = _spy_on_save_states(monkeypatch)
    inputs = {k: v.detach() for k, v in make_inputs(1, 3, 2, 2).items()}
    with torch.enable_grad():
        triton_kernel.selective_scan_triton(**inputs)
    assert saved == [False]


def test_last_state_gradient_keeps_the_compute_dtype_of_u():
    """float64 u with a float32 δ computes in float64: the gradient arriving at the last state
    reaches the kernel in float64 too (rounded through float32 it would be off by about 1e-8),
    so ∂u equals the float64 loop's to 1e-12."""
    inputs = float64_inputs(l=5, d=2, n=2)
    inputs["delta"] = inputs["delta"].detach().float()
    _, last = triton_kernel.selective_scan_triton(**inputs, delta_softplus=True,
                                                  return_last_state=True)
    glast = torch.randn(last.shape, generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64)
    (du,) = torch.autograd.grad((last * glast).sum(), [inputs["u"]])
    _, last_ref = scan_loop(**inputs, delta_softplus=True)
    (du_ref,) = torch.autograd.grad((last_ref * glast).sum(), [inputs["u"]])
    assert last.dtype == du.dtype == torch.float64
    torch.testing.assert_close(du, du_ref, rtol=1e-12, atol=1e-12)
