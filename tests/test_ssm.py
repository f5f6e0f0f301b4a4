"""sseq.ssm: the kernel against matrix powers, convolution against recurrence, and S4D."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.linalg import expm

from sseq import discretize, ssm

TOL = 1e-10  # float64


def _rand(*shape, complex_=False, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    return torch.complex(x, torch.randn(*shape, generator=g, dtype=dtype)) if complex_ else x


def powers_kernel(A_bar, B_bar, C, L):
    """The oracle: K_k = C A_bar^k B_bar with numpy's matrix_power, one k at a time."""
    A, B, C = (np.asarray(x) for x in (A_bar, B_bar, C))
    if A.ndim == 1:
        A = np.diag(A)
    return np.array([C @ np.linalg.matrix_power(A, k) @ B for k in range(L)])


def _stable_dense(n, seed=0):
    """A random dense A_bar with spectral radius 0.9."""
    A = _rand(n, n, seed=seed)
    return 0.9 * A / torch.linalg.eigvals(A).abs().max()


SYSTEMS = {  # name: (A_bar, B_bar, C)
    "dense": (_stable_dense(5), _rand(5, seed=1), _rand(5, seed=2)),
    "diagonal real": (torch.rand(6, dtype=torch.float64) * 1.8 - 0.9, _rand(6, seed=1),
                      _rand(6, seed=2)),
    "diagonal complex": (0.95 * torch.exp(1j * _rand(6)), _rand(6, complex_=True, seed=1),
                         _rand(6, complex_=True, seed=2)),
    "diagonal with zero": (torch.tensor([0.0, 0.5, -0.7], dtype=torch.float64),
                           torch.ones(3, dtype=torch.float64), _rand(3, seed=2)),
}


@pytest.mark.parametrize("name", list(SYSTEMS))
@pytest.mark.parametrize("fn", [ssm.kernel, ssm.kernel_ref], ids=["kernel", "kernel_ref"])
@pytest.mark.parametrize("L", [1, 2, 7, 33])
def test_kernel_matches_matrix_powers(name, fn, L):
    A_bar, B_bar, C = SYSTEMS[name]
    K = fn(A_bar, B_bar, C, L)
    assert K.shape == (L,) and K.is_complex() == A_bar.is_complex()
    np.testing.assert_allclose(K.numpy(), powers_kernel(A_bar, B_bar, C, L), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", ["dense", "diagonal real", "diagonal complex"])
def test_kernel_and_reference_agree_in_outputs_and_gradients(name):
    A_bar, B_bar, C = (x.clone().requires_grad_() for x in SYSTEMS[name])
    K, K_ref = ssm.kernel(A_bar, B_bar, C, 40), ssm.kernel_ref(A_bar, B_bar, C, 40)
    np.testing.assert_allclose(K.detach().numpy(), K_ref.detach().numpy(), atol=TOL)
    w = _rand(40, seed=11)
    grads = torch.autograd.grad((K * w).sum().real, (A_bar, B_bar, C))
    grads_ref = torch.autograd.grad((K_ref * w).sum().real, (A_bar, B_bar, C))
    for g, g_ref in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["dense", "diagonal real", "diagonal complex"])
@pytest.mark.parametrize("fn", [ssm.kernel, ssm.kernel_ref], ids=["kernel", "kernel_ref"])
def test_at_length_one_A_bar_gets_a_zero_gradient_not_none(name, fn):
    """K_0 = C B_bar: A_bar is an input of the kernel at every length, so at L = 1 its gradient
    is zero (as for a loop of products in PyTorch), not None (issue 9)."""
    A_bar, B_bar, C = (x.clone().requires_grad_() for x in SYSTEMS[name])
    grads = torch.autograd.grad(fn(A_bar, B_bar, C, 1).sum().real, (A_bar, B_bar, C),
                                allow_unused=True)
    assert grads[0] is not None and torch.all(grads[0] == 0)
    torch.testing.assert_close(grads[1], C.detach().conj() if A_bar.is_complex() else
                               C.detach(), rtol=0, atol=0)


def test_real_diagonal_kernel_overflows_to_inf_like_the_reference():
    """Real λ = 2 at L = 200 in float32: λ^k passes float32's largest number at k = 128, and K
    is inf from there on, as the reference's products give, not NaN (issue 9: the complex
    power 2^k · e^{i·0} made inf · 0 = NaN). λ = −3 alternates in sign; λ = 0 gives K_0 only."""
    A_bar = torch.tensor([[2.0], [-3.0], [0.5], [0.0]])  # (d, n = 1): one mode per channel
    B_bar, C = torch.ones(4, 1), torch.ones(4, 1)
    K, K_ref = ssm.kernel(A_bar, B_bar, C, 200), ssm.kernel_ref(A_bar, B_bar, C, 200)
    assert not K.is_complex() and not torch.isnan(K).any()
    assert torch.isinf(K_ref[0, 128:]).all() and torch.equal(K[0, 130:], K_ref[0, 130:])
    assert torch.isinf(K_ref[1, 81:]).all() and torch.equal(K[1, 81:], K_ref[1, 81:])
    finite = K_ref.abs() < 1e37  # away from the overflow, where rounding decides inf or not
    torch.testing.assert_close(K[finite], K_ref[finite], rtol=2e-5, atol=1e-30)
    assert K[3, 0] == 1 and torch.all(K[3, 1:] == 0)
    C = torch.complex(torch.randn(4, 1), torch.randn(4, 1))  # real λ, complex C: complex K
    K, K_ref = ssm.kernel(A_bar[2:], B_bar[2:], C[2:], 50), ssm.kernel_ref(A_bar[2:], B_bar[2:],
                                                                          C[2:], 50)
    assert K.is_complex()
    torch.testing.assert_close(K, K_ref, rtol=1e-5, atol=1e-30)


def test_kernel_per_channel():
    """Diagonal A_bar, B_bar, C of shape (d, n) give one kernel per channel, (d, L)."""
    A_bar = 0.9 * torch.exp(1j * _rand(3, 4))
    B_bar, C = _rand(3, 4, complex_=True, seed=1), _rand(3, 4, complex_=True, seed=2)
    K = ssm.kernel(A_bar, B_bar, C, 20)
    assert K.shape == (3, 20)
    for h in range(3):
        np.testing.assert_allclose(K[h].numpy(), powers_kernel(A_bar[h], B_bar[h], C[h], 20),
                                   atol=TOL)


def test_long_diagonal_kernel_in_float32_is_accurate():
    """Protects: float32's diagonal kernel at L = 16384, |λ| near 1, loses no more than rounding
    λ to float32 does by itself.

    That rounding alone moves the float64 kernel by 6.2e-5 here (the powers of the rounded λ,
    computed in float64, are the yardstick); the float32 kernel by exp(k log λ) is 7.2e-5 off.
    The bound, 1.5e-4 and at most twice the yardstick, fails for any error in the powers
    beyond that, such as exp(k log λ) with k off by 5 parts in 10⁷ or 2 in 10⁶, both of which
    the former bound 5e-3 let through.
    """
    lam64 = torch.exp(torch.complex(torch.tensor([-1e-4, -1e-3]), torch.tensor([0.3, 2.0]))
                      .to(torch.complex128))
    ones = torch.ones(2, dtype=torch.complex128)
    want = ssm.kernel(lam64, ones, ones, 16384)
    lam32 = lam64.to(torch.complex64)
    rounding = (ssm.kernel(lam32.to(torch.complex128), ones, ones, 16384) - want).abs().max()
    got = ssm.kernel(lam32, ones.to(torch.complex64), ones.to(torch.complex64), 16384)
    assert got.dtype == torch.complex64
    error = (got.to(torch.complex128) - want).abs().max()
    assert error < 1.5e-4 and error < 2 * rounding, (error, rounding)


def test_dense_kernel_by_squaring_matches_sequential_powers_at_long_L():
    A_bar, B_bar, C = SYSTEMS["dense"]
    np.testing.assert_allclose(ssm.kernel(A_bar, B_bar, C, 1000).numpy(),
                               ssm.kernel_ref(A_bar, B_bar, C, 1000).numpy(), atol=1e-12)


# --- the two views --------------------------------------------------------------------------


VIEWS = {  # name: (A_bar, B_bar, C, channels d or None)
    "dense shared": (*SYSTEMS["dense"], None),
    "dense on channels": (*SYSTEMS["dense"], 3),
    "diagonal shared": (*SYSTEMS["diagonal real"], 2),
    "diagonal complex": (*SYSTEMS["diagonal complex"], None),
    "diagonal per channel": (0.9 * torch.exp(1j * _rand(3, 4)), _rand(3, 4, complex_=True),
                             _rand(3, 4, complex_=True, seed=2), 3),
}


@pytest.mark.parametrize("name", list(VIEWS))
@pytest.mark.parametrize("length", [1, 7, 130])
def test_convolution_equals_recurrence(name, length):
    """The theorem: running the recurrence = convolving with K_k = C A_bar^k B_bar."""
    A_bar, B_bar, C, d = VIEWS[name]
    u = _rand(2, length, *(() if d is None else (d,)), seed=5)
    y_rec = ssm.recurrent(A_bar, B_bar, C, u)
    K = ssm.kernel(A_bar, B_bar, C, length)  # (l,) or (d, l)
    y_conv = ssm.convolve(u, K)
    assert y_rec.shape == y_conv.shape == u.shape
    np.testing.assert_allclose(y_conv.numpy(), y_rec.numpy(), rtol=0, atol=1e-9)


def test_recurrent_returns_the_last_state():
    A_bar, B_bar, C = SYSTEMS["dense"]
    u = _rand(2, 9, seed=3)
    _, x = ssm.recurrent(A_bar, B_bar, C, u, return_state=True)
    want = sum(torch.linalg.matrix_power(A_bar, 8 - t) @ B_bar * u[:, t, None] for t in range(9))
    np.testing.assert_allclose(x.numpy(), want.numpy(), atol=TOL)


@pytest.mark.parametrize("shapes", [((2, 9), (9,)), ((2, 9), (4,)), ((2, 9), (20,)),
                                    ((2, 9, 3), (3, 9)), ((2, 9, 3), (9,)), ((1, 1), (1,))])
def test_convolve_matches_numpy_and_the_reference_with_gradients(shapes):
    u_shape, K_shape = shapes
    u = _rand(*u_shape, seed=1).requires_grad_()
    K = _rand(*K_shape, seed=2).requires_grad_()
    y, y_ref = ssm.convolve(u, K), ssm.convolve_ref(u, K)
    np.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy(), atol=1e-12)
    u3 = u.detach().reshape(u.shape[0], u.shape[1], -1).numpy()  # (b, l, d)
    K2 = np.broadcast_to(K.detach().numpy(), (u3.shape[2], K.shape[-1]))
    want = np.stack([[np.convolve(u3[b, :, h], K2[h])[: u3.shape[1]] for h in range(u3.shape[2])]
                     for b in range(u3.shape[0])]).transpose(0, 2, 1).reshape(u.shape)
    np.testing.assert_allclose(y.detach().numpy(), want, atol=1e-12)
    w = _rand(*y.shape, seed=9)
    g = torch.autograd.grad((y * w).sum(), (u, K))
    g_ref = torch.autograd.grad((y_ref * w).sum(), (u, K))
    for a, b in zip(g, g_ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-12)


def test_convolve_does_not_wrap_around():
    """An impulse at the last step must not leak into earlier outputs (circular FFT)."""
    u = torch.zeros(1, 64, dtype=torch.float64)
    u[0, -1] = 1.0
    y = ssm.convolve(u, torch.ones(64, dtype=torch.float64))
    assert y[0, :-1].abs().max() < 1e-12 and abs(y[0, -1].item() - 1) < 1e-12


# --- S4D ----------------------------------------------------------------------------------


def test_s4d_initialisations():
    n = torch.arange(4.0)
    lin, inv, real = (ssm.s4d_A(init, 8) for init in ("lin", "inv", "real"))
    np.testing.assert_allclose(lin.numpy(), (-0.5 + 1j * math.pi * n).numpy(), rtol=1e-6)
    np.testing.assert_allclose(inv.numpy(), (-0.5 + 1j * 8 / math.pi * (8 / (2 * n + 1) - 1))
                               .numpy(), rtol=1e-6)
    np.testing.assert_allclose(real.numpy(), -(n + 1).numpy().astype(complex), rtol=1e-6)


def test_s4d_step_sizes_are_log_uniform_in_range():
    torch.manual_seed(0)
    layer = ssm.S4D(ssm.S4DConfig(d_model=2000, d_state=4, dt_min=1e-3, dt_max=1e-1))
    dt = layer.log_dt.exp().detach().squeeze(-1)
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1
    # log-uniform: the median is the geometric mean of the ends, 1e-2
    assert abs(math.log10(dt.median().item()) + 2) < 0.1


@pytest.mark.parametrize("init", ["lin", "inv", "real"])
def test_s4d_kernel_is_the_full_conjugate_system(init):
    """2·Re over N/2 modes = the kernel of the full N-dimensional diagonal system by scipy."""
    torch.manual_seed(0)
    layer = ssm.S4D(ssm.S4DConfig(d_model=2, d_state=8, init=init)).double()
    A = torch.complex(-layer.log_A_real.exp(), layer.A_imag).detach().numpy()  # (d, 4)
    C = torch.view_as_complex(layer.C.detach()).numpy()
    dt = layer.log_dt.exp().detach().numpy()[:, 0]
    K = layer.kernel(50).detach().numpy()
    for h in range(2):
        A_full = np.diag(np.concatenate([A[h], A[h].conj()]))
        C_full, B_full = np.concatenate([C[h], C[h].conj()]), np.ones(8)
        A_bar = expm(dt[h] * A_full)
        B_bar = np.linalg.solve(A_full, (A_bar - np.eye(8)) @ B_full)
        np.testing.assert_allclose(K[h], powers_kernel(A_bar, B_bar, C_full, 50).real, atol=1e-9)


def test_s4d_convolutional_and_recurrent_views_agree():
    torch.manual_seed(0)
    layer = ssm.S4D(ssm.S4DConfig(d_model=4, d_state=16, dt_min=0.01, dt_max=0.5))
    u = torch.randn(3, 50, 4)
    y = layer(u)
    assert y.shape == u.shape and y.dtype == torch.float32
    torch.testing.assert_close(layer.recurrent(u), y, rtol=1e-4, atol=1e-4)
    x, steps = None, []
    for t in range(50):
        y_t, x = layer.step(u[:, t], x)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, dim=1), y, rtol=1e-4, atol=1e-4)


def test_s4d_gradients_reach_every_parameter():
    torch.manual_seed(0)
    layer = ssm.S4D(ssm.S4DConfig(d_model=3, d_state=8))
    layer(torch.randn(2, 20, 3)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_s4d_block_is_residual_and_pre_norm():
    """Protects the block's wiring, x + Dropout(Linear(GELU(S4D(LayerNorm(x))))).

    With its channel mix zeroed, the block is the identity (the residual path alone); in
    general, block(x) − x is the branch rebuilt from torch.nn.functional and the block's own
    S4D layer, and dropout acts only on the branch, only in training.
    """
    torch.manual_seed(0)
    config = ssm.S4DConfig(d_model=6, d_state=8)
    block = ssm.S4DBlock(config, dropout=0.5).double().eval()
    x = torch.randn(3, 12, 6, dtype=torch.float64)
    with torch.no_grad():
        block.norm.weight.uniform_(0.5, 1.5)
        block.norm.bias.uniform_(-0.5, 0.5)
        normed = F.layer_norm(x, (6,), block.norm.weight, block.norm.bias, block.norm.eps)
        branch = F.linear(F.gelu(block.ssm(normed)), block.mix.weight, block.mix.bias)
        torch.testing.assert_close(block(x), x + branch, rtol=1e-12, atol=1e-12)
        block.train()
        dropped = block(x) - x  # dropout zeroes about half of the branch, scales the rest by 2
        kept = dropped != 0
        assert 0.25 < kept.double().mean() < 0.75
        torch.testing.assert_close(dropped[kept], 2 * branch[kept], rtol=1e-12, atol=1e-12)
        block.mix.weight.zero_()
        block.mix.bias.zero_()
        assert torch.equal(block(x), x)


def test_s4d_classifier_shapes_and_learning():
    torch.manual_seed(0)
    model = ssm.S4DClassifier(ssm.S4DClassifierConfig(d_model=8, d_state=8, n_layers=2))
    u = torch.randn(16, 30)
    targets = (u[:, :5].sum(1) > 0).long()  # the label sits at the start of the sequence
    assert model(u).shape == (16, 10) and model(u.unsqueeze(-1)).shape == (16, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(u), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_is_refused():
    A_bar, B_bar, C = SYSTEMS["dense"]
    with pytest.raises(ValueError, match=r"B_bar must be \(5,\)"):
        ssm.kernel(A_bar, torch.ones(4, dtype=torch.float64), C, 10)
    with pytest.raises(ValueError, match="C must be"):
        ssm.kernel(torch.rand(3), torch.rand(3), torch.rand(4), 10)
    with pytest.raises(ValueError, match="L must be a positive int"):
        ssm.kernel(A_bar, B_bar, C, 0)
    with pytest.raises(TypeError, match="A_bar must be a floating-point"):
        ssm.kernel(torch.eye(2, dtype=torch.int64), torch.ones(2), torch.ones(2), 3)
    with pytest.raises(ValueError, match=r"u must be \(b, l\) or \(b, l, d\)"):
        ssm.recurrent(A_bar, B_bar, C, torch.ones(7, dtype=torch.float64))
    with pytest.raises(ValueError, match="one SSM per channel"):
        ssm.recurrent(torch.rand(3, 4), torch.rand(3, 4), torch.rand(3, 4), torch.rand(2, 5, 2))
    with pytest.raises(TypeError, match="u must be a floating-point"):
        ssm.convolve(torch.ones(2, 5, dtype=torch.int64), torch.ones(5))
    with pytest.raises(ValueError, match=r"K must be \(l_K,\)"):
        ssm.convolve(torch.ones(2, 5, 3), torch.ones(4, 5))
    with pytest.raises(ValueError, match="d_state must be an even int"):
        ssm.s4d_A("lin", 7)
    with pytest.raises(ValueError, match="init must be"):
        ssm.s4d_A("legs", 8)
    with pytest.raises(ValueError, match="dt_min <= dt_max"):
        ssm.S4D(ssm.S4DConfig(d_model=2, dt_min=0.1, dt_max=0.01))


@pytest.mark.parametrize("call, error, message", [
    (lambda: ssm.kernel_ref(torch.rand(3), torch.ones(3), torch.ones(3), 0), ValueError,
     "L must be a positive int, got 0"),
    (lambda: ssm.recurrent(torch.rand(3), torch.ones(3), torch.ones(3), torch.ones(2, 0)),
     ValueError, "u must have l >= 1 time steps, got shape (2, 0)"),
    (lambda: ssm.S4DConfig(d_model=2.5), ValueError, "d_model must be a positive int, got 2.5"),
    (lambda: ssm.S4DConfig(d_model=-1), ValueError, "d_model must be a positive int, got -1"),
    (lambda: ssm.S4DConfig(d_model=0), ValueError, "d_model must be a positive int, got 0"),
    (lambda: ssm.S4DConfig(d_model=2, d_state=5), ValueError, "d_state must be an even int"),
    (lambda: ssm.S4DConfig(d_model=2, init="legs"), ValueError, "init must be"),
    (lambda: ssm.S4DConfig(d_model=2, dt_min=0.0), ValueError, "need 0 < dt_min <= dt_max"),
    (lambda: ssm.S4DConfig(d_model=2, dt_max=math.inf), ValueError, "need 0 < dt_min <= dt_max"),
    (lambda: ssm.S4D(ssm.S4DConfig(d_model=2))(torch.ones(1, 5, 2, dtype=torch.bfloat16)),
     TypeError, "u must have the layer's dtype torch.float32, got torch.bfloat16"),
    (lambda: ssm.S4D(ssm.S4DConfig(d_model=2))(torch.ones(1, 5, 3)), ValueError,
     "u must have shape (b, l, d_model) = (?, ?, 2), got (1, 5, 3)"),
])
def test_hostile_input_gets_an_error_naming_the_argument(call, error, message):
    """Issue 9: each of these failed inside PyTorch with an error that named no argument (or,
    for d_model = 0, built an empty layer)."""
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_numpy_integers_are_accepted():
    A_bar, B_bar, C = SYSTEMS["dense"]
    for fn in (ssm.kernel, ssm.kernel_ref):
        torch.testing.assert_close(fn(A_bar, B_bar, C, np.int64(9)), fn(A_bar, B_bar, C, 9),
                                   rtol=0, atol=0)
    config = ssm.S4DConfig(d_model=np.int64(3), d_state=np.int32(8))
    assert config == ssm.S4DConfig(3, 8) and type(config.d_model) is int
    assert ssm.s4d_A("inv", np.int64(8)).shape == (4,)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_convolve_in_half_precision(dtype):
    """The FFT needs 32 bits (on a CPU): half inputs are transformed in float32 and the result
    is rounded to their dtype, as the reference's products are."""
    u, K = torch.randn(2, 50, 3).to(dtype), (0.9 ** torch.arange(50.0)).repeat(3, 1).to(dtype)
    y = ssm.convolve(u, K)
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), ssm.convolve_ref(u.float(), K.float()),
                               rtol=2e-2, atol=5e-2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_s4d_layer_in_half_precision(dtype):
    """A layer cast to half computes its kernel in float32 (complex32 has too few operations)
    and returns the half dtype, close to the float32 layer's output."""
    layer = ssm.S4D(ssm.S4DConfig(d_model=3, d_state=8))
    u = torch.randn(2, 40, 3)
    half = copy.deepcopy(layer).to(dtype)
    y = half(u.to(dtype))
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), layer(u).detach(), rtol=3e-2, atol=1e-1)
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == dtype for p in half.parameters())


def test_discretized_s4d_matches_the_discretize_module():
    """S4D's A_bar, B_bar are discretize.zoh of its A with each channel's Δ."""
    layer = ssm.S4D(ssm.S4DConfig(d_model=2, d_state=4))
    A_bar, B_bar, _ = layer.discrete()
    A = torch.complex(-layer.log_A_real.exp(), layer.A_imag)
    for h in range(2):
        want = discretize.zoh(A[h], torch.ones(2, dtype=torch.complex64),
                              float(layer.log_dt[h].exp().detach()))
        torch.testing.assert_close(A_bar[h], want[0])
        torch.testing.assert_close(B_bar[h], want[1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_classifier_step_by_step_equals_its_convolutional_forward(dtype):
    """Recurrent generation through every block (S4D.step, a carried state) = forward()."""
    torch.manual_seed(3)
    config = ssm.S4DClassifierConfig(d_input=2, n_classes=5, d_model=8, d_state=6, n_layers=2)
    model = ssm.S4DClassifier(config).to(dtype).eval()
    u = torch.randn(3, 40, 2, dtype=dtype)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(model.recurrent(u), model(u), rtol=tol, atol=tol)
    block, x = model.blocks[0], torch.randn(3, 40, 8, dtype=dtype)
    state, steps = None, []
    for t in range(40):
        y_t, state = block.step(x[:, t], state)
        steps.append(y_t)
    assert state.shape == (3, 8, 3)  # (b, d, n/2 stored modes)
    torch.testing.assert_close(torch.stack(steps, 1), block(x), rtol=tol, atol=tol)
# --- what the mutation tests found untested (make mutants) ------------------------------------


def _per_row_kernel(A_bar, B_bar, C, L):
    """The oracle for a batch of diagonals (d, n): one matrix-power kernel per row."""
    return np.stack([powers_kernel(A_bar[h], B_bar[h], C[h], L) for h in range(A_bar.shape[0])])


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_a_square_batch_of_diagonals_is_read_as_diagonals_when_told(complex_):
    """Protects ``diagonal=True`` end to end: a (d, n) batch of diagonals with d = n is one
    SSM per row in kernel, kernel_ref, step and recurrent (guessed, it would be one dense
    matrix). Real rows also exercise the real powers λ^k of a batch."""
    A_bar = (torch.rand(4, 4, dtype=torch.float64) * 1.8 - 0.9) if not complex_ else \
        0.9 * torch.exp(1j * _rand(4, 4))
    B_bar, C = _rand(4, 4, complex_=complex_, seed=1), _rand(4, 4, complex_=complex_, seed=2)
    want = _per_row_kernel(A_bar, B_bar, C, 9)
    for fn in (ssm.kernel, ssm.kernel_ref):
        np.testing.assert_allclose(fn(A_bar, B_bar, C, 9, diagonal=True).numpy(), want,
                                   rtol=0, atol=TOL)
    u = _rand(2, 9, 4, seed=3)
    y = ssm.recurrent(A_bar, B_bar, C, u, diagonal=True)
    conv = ssm.convolve_ref(u, torch.from_numpy(want))
    torch.testing.assert_close(y, conv.to(y.dtype), rtol=0, atol=TOL)
    x = torch.zeros(2, 4, 4, dtype=A_bar.dtype)
    y0, _ = ssm.step(A_bar, B_bar, C, x, u[:, 0].to(A_bar.dtype), diagonal=True)
    torch.testing.assert_close(y0, y[:, 0], rtol=0, atol=TOL)


def test_diagonal_kernel_with_complex_C_and_real_system():
    """Protects the diagonal kernel's dtype promotion: real λ and B_bar (real powers) with a
    complex C give the complex kernel of the matrix powers."""
    A_bar, B_bar, _ = SYSTEMS["diagonal real"]
    C = _rand(6, complex_=True, seed=4)
    K = ssm.kernel(A_bar, B_bar, C, 12)
    assert K.dtype == torch.complex128
    np.testing.assert_allclose(K.numpy(), powers_kernel(A_bar, B_bar, C, 12), rtol=0, atol=TOL)
    lam = SYSTEMS["diagonal complex"][0]  # complex powers, real B_bar and C
    K = ssm.kernel(lam, B_bar, _rand(6, seed=5), 12)
    np.testing.assert_allclose(K.numpy(), powers_kernel(lam, B_bar, _rand(6, seed=5), 12),
                               rtol=0, atol=TOL)
    for name, args in (("B_bar", (lam, torch.ones(6, dtype=torch.int64), B_bar)),
                       ("C", (lam, B_bar, torch.ones(6, dtype=torch.int64)))):
        with pytest.raises(TypeError, match=f"^{name} must be a floating-point"):
            ssm.kernel(*args, 4)


def test_convolve_ref_of_a_real_input_with_a_complex_kernel():
    """Protects convolve_ref's output dtype: u and K promoted (a complex kernel's imaginary part
    is kept), as the FFT version does."""
    u, K = _rand(2, 10, seed=1), _rand(4, complex_=True, seed=2)
    got = ssm.convolve_ref(u, K)
    assert got.dtype == torch.complex128
    torch.testing.assert_close(got, ssm.convolve(u, K), rtol=0, atol=1e-12)


def test_ssm_messages_name_the_argument():
    """Protects the names and shapes in the messages of recurrent and convolve."""
    with pytest.raises(TypeError, match="^u must be a floating-point"):
        ssm.recurrent(torch.rand(3), torch.rand(3), torch.rand(3),
                      torch.ones(2, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"^A_bar of shape \(3, 4\) has one SSM per channel, so u "
                                         r"must be \(b, l, 3\); got shape \(2, 5, 2\)$"):
        ssm.recurrent(torch.rand(3, 4), torch.rand(3, 4), torch.rand(3, 4), torch.rand(2, 5, 2))
    with pytest.raises(TypeError, match="^K must be a floating-point"):
        ssm.convolve(torch.ones(2, 5), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"^u must be \(b, l\) or \(b, l, d\), got shape "
                                         r"\(5,\)$"):
        ssm.convolve(torch.ones(5), torch.ones(3))


@pytest.mark.parametrize("bad", [1, 2.0, 4.0, "4", True])
def test_d_state_must_be_an_even_int_from_two(bad):
    """Protects _check_d_state: 2 is the smallest state (one conjugate pair); odd, float,
    string and bool sizes are refused."""
    assert ssm.S4DConfig(1, 2).d_state == 2
    with pytest.raises(ValueError, match="d_state must be an even int >= 2"):
        ssm.S4DConfig(1, bad)


def test_s4d_config_boundaries_and_types():
    """Protects S4DConfig: one channel is allowed, a NumPy d_state becomes an int, Δ's range may
    be a single value, and a bool is not a step size."""
    config = ssm.S4DConfig(1, np.int64(8), dt_min=0.01, dt_max=0.01)
    assert config.d_model == 1 and type(config.d_state) is int and config.d_state == 8
    with pytest.raises(ValueError, match="need 0 < dt_min <= dt_max < inf"):
        ssm.S4DConfig(2, dt_min=True, dt_max=2.0)


def test_s4d_parameters_have_one_row_per_channel():
    """Protects the layer's shapes: every channel owns its A (log_A_real, A_imag), B, C, Δ and
    D, (d, n) with n = d_state/2 modes; a wrong config type is named."""
    layer = ssm.S4D(ssm.S4DConfig(d_model=3, d_state=8))
    shapes = {name: tuple(t.shape) for name, t in layer.state_dict().items()}
    assert shapes == {"log_dt": (3, 1), "log_A_real": (3, 4), "A_imag": (3, 4),
                      "C": (3, 4, 2), "B": (3, 4), "D": (3,)}
    with pytest.raises(TypeError, match="^config must be an S4DConfig, got dict$"):
        ssm.S4D({"d_model": 3})


def test_s4d_with_as_many_channels_as_modes_agrees_in_every_view():
    """Protects the layer's views when d_model equals the number of modes (its A_bar is then a
    square (d, n)): forward, recurrent and step give the same outputs."""
    torch.manual_seed(0)
    layer = ssm.S4D(ssm.S4DConfig(d_model=4, d_state=8, dt_min=0.05, dt_max=0.5)).double()
    u = _rand(2, 12, 4, seed=5)
    y = layer(u)
    torch.testing.assert_close(layer.recurrent(u), y, rtol=1e-10, atol=1e-10)
    x, steps = None, []
    for t in range(12):
        y_t, x = layer.step(u[:, t], x)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-10, atol=1e-10)


def test_s4d_inputs_are_described_by_their_view():
    """Protects the layer's input messages: the shape each view expects, and the dtype hint."""
    layer = ssm.S4D(ssm.S4DConfig(d_model=3, d_state=4))
    with pytest.raises(ValueError, match=r"^u must have shape \(b, d_model\) = \(\?, 3\)"):
        layer.step(torch.ones(2, 5, 3))
    with pytest.raises(ValueError, match=r"^u must have shape \(b, l, d_model\) = \(\?, \?, 3\)"):
        layer.recurrent(torch.ones(2, 3))
    with pytest.raises(TypeError, match=r"^u must be a torch.Tensor \(b, l, d_model\), got list"):
        layer([[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match=r"\(convert one: layer.to\(dtype\) or u.to\(dtype\)\)$"):
        layer(torch.ones(2, 5, 3, dtype=torch.float64))


def test_s4d_classifier_passes_its_config_to_every_block():
    """Protects the classifier's wiring: each block's S4D gets the configured Δ range, and
    its dropout the configured rate (a block alone has none by default)."""
    config = ssm.S4DClassifierConfig(d_model=4, d_state=4, n_layers=2, dt_min=0.2, dt_max=0.3,
                                     dropout=0.25)
    model = ssm.S4DClassifier(config)
    for block in model.blocks:
        dt = torch.exp(block.ssm.log_dt)
        assert ((dt >= 0.2 - 1e-6) & (dt <= 0.3 + 1e-6)).all()
        assert (block.ssm.config.dt_min, block.ssm.config.dt_max) == (0.2, 0.3)
        assert block.dropout.p == 0.25
    assert ssm.S4DBlock(ssm.S4DConfig(4, 4)).dropout.p == 0.0


def test_system_shapes_are_checked_with_a_hint_for_square_batches():
    """Protects _check_ssm's messages: each argument named with the shape it must have, the
    hint about diagonal=True only for a dense A_bar given a B_bar or C of its own shape, and
    L checked as an int."""
    A = torch.rand(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^B_bar must be \(3,\) for A_bar of shape \(3, 3\); got "
                                         r"shape \(3, 3\); a square A_bar is read as one dense "
                                         r"matrix: pass diagonal=True if its rows are diagonals$"):
        ssm.kernel(A, torch.rand(3, 3, dtype=torch.float64), torch.rand(3, dtype=torch.float64), 4)
    with pytest.raises(ValueError, match=r"^B_bar must be \(3,\) for A_bar of shape \(3, 3\); got "
                                         r"shape \(2, 3\)$"):
        ssm.kernel(A, torch.rand(2, 3, dtype=torch.float64), torch.rand(3, dtype=torch.float64), 4)
    with pytest.raises(ValueError, match=r"^C must be \(\.\.\., 3\) broadcasting against A_bar for "
                                         r"A_bar of shape \(2, 3\); got shape \(2, 4\)$"):
        ssm.kernel(torch.rand(2, 3), torch.rand(2, 3), torch.rand(2, 4), 4)
    with pytest.raises(ValueError, match="^L must be a positive int, got '4'$"):
        ssm.kernel(torch.rand(3), torch.rand(3), torch.rand(3), "4")
