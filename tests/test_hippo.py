"""HiPPO against its oracles: hand-derived matrices, sympy, closed forms and quadrature.

Tolerances: exact identities at float64 round-off (1e-12); the online recurrence against
an independent quadrature of the continuous projection at the size of the bilinear
rule's O(dt^2) error, measured and stated per test.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import sympy as sp
import torch
from numpy.polynomial import legendre as npleg
from scipy import integrate, special

from sseq import hippo

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

s3, s5, s15 = math.sqrt(3), math.sqrt(5), math.sqrt(15)

# --- The matrices, by hand -----------------------------------------------------------------

# LegS by hand from A_nk = -sqrt(2n+1)sqrt(2k+1) (n > k), -(n+1) (n = k), B_n = sqrt(2n+1).
LEGS_BY_HAND = {
    1: ([[-1.0]], [1.0]),
    2: ([[-1.0, 0.0], [-s3, -2.0]], [1.0, s3]),
    3: ([[-1.0, 0.0, 0.0], [-s3, -2.0, 0.0], [-s5, -s15, -3.0]], [1.0, s3, s5]),
}
# LegT (θ = 1), by hand: d/dt of c_n = ∫_{t-1}^t u p_n gives p_n(t) u(t) = sqrt(2n+1) u(t)
# (so B), minus p_n(t-1) u(t-1) with u(t-1) ≈ Σ_k c_k p_k(t-1) = Σ_k (-1)^k sqrt(2k+1) c_k,
# plus ∂_t p_n = -2 sqrt(2n+1) Σ_{k<n, n-k odd} sqrt(2k+1) p_k. Summed, for N = 3:
LEGT_BY_HAND = {
    1: ([[-1.0]], [1.0]),
    3: ([[-1.0, s3, -s5], [-s3, -3.0, s15], [-s5, -s15, -5.0]], [1.0, s3, s5]),
}
LAGT_BY_HAND = {3: ([[-1.0, 0.0, 0.0], [-1.0, -1.0, 0.0], [-1.0, -1.0, -1.0]], [1.0, 1.0, 1.0])}


@pytest.mark.parametrize(("fn", "table"), [(hippo.legs, LEGS_BY_HAND), (hippo.legt, LEGT_BY_HAND),
                                           (hippo.lagt, LAGT_BY_HAND)])
def test_matrices_match_small_cases_derived_by_hand(fn, table):
    for N, (A_hand, B_hand) in table.items():
        A, B = fn(N)
        assert A.dtype == B.dtype == torch.float64
        assert A.shape == (N, N) and B.shape == (N,)
        torch.testing.assert_close(A, torch.tensor(A_hand, dtype=torch.float64), rtol=0, atol=1e-12)
        torch.testing.assert_close(B, torch.tensor(B_hand, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("N", [1, 2, 3, 6])
def test_legs_symbolic_derivation_equals_the_closed_form(N):
    A_sym, B_sym = hippo.legs_symbolic(N)
    A, B = hippo.legs(N)
    assert A_sym.shape == (N, N) and B_sym.shape == (N, 1)
    np.testing.assert_allclose(np.array(A_sym.evalf(30), dtype=float), A.numpy(), atol=1e-14)
    np.testing.assert_allclose(np.array(B_sym.evalf(30), dtype=float)[:, 0], B.numpy(), atol=1e-14)


def test_legs_symbolic_is_exact():
    A, B = hippo.legs_symbolic(3)
    assert A[2, 1] == -sp.sqrt(15) and A[2, 2] == -3 and A[0, 2] == 0
    assert list(B) == [1, sp.sqrt(3), sp.sqrt(5)]


@pytest.mark.parametrize("measure", hippo.MEASURES)
@pytest.mark.parametrize("N", [1, 2, 5, 16, 64])
def test_every_hippo_matrix_is_stable(measure, N):
    A, _ = hippo.transition(measure, N)
    assert torch.linalg.eigvals(A).real.max() < 0


def test_legs_eigenvalues_are_minus_one_to_minus_N():
    eig = torch.linalg.eigvals(hippo.legs(8)[0]).real.sort().values
    torch.testing.assert_close(eig, -torch.arange(8, 0, -1, dtype=torch.float64))


def test_lmu_is_legt_in_other_coordinates():
    q = torch.arange(7, dtype=torch.float64)
    S = torch.diag((-1.0) ** q * torch.sqrt(2 * q + 1))
    A_lmu, B_lmu = hippo.lmu(7)
    A, B = hippo.legt(7)
    torch.testing.assert_close(torch.linalg.solve(S, A_lmu @ S), A, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.solve(S, B_lmu), B, rtol=0, atol=1e-12)


# --- The bases --------------------------------------------------------------------------------


def test_bases_match_scipy_and_are_nan_outside_their_support():
    x = torch.linspace(-0.5, 2.0, 11, dtype=torch.float64)  # t = 2
    xn, n = x.numpy()[:, None], np.arange(5)
    P = hippo.basis("legs", 5, t=2.0, s=x)
    expected = np.sqrt(2 * n + 1) * special.eval_legendre(n, 2 * xn / 2.0 - 1)
    inside = x >= 0
    np.testing.assert_allclose(P[inside].numpy(), expected[inside.numpy()], atol=1e-12)
    assert torch.isnan(P[~inside]).all()
    Q = hippo.basis("lagt", 5, t=2.0, s=x, theta=0.5)
    np.testing.assert_allclose(Q.numpy(), special.eval_laguerre(n, (2.0 - xn) / 0.5), atol=1e-10)
    R = hippo.basis("legt", 5, t=2.0, s=x, theta=0.5)
    expected = np.sqrt(2 * n + 1) * special.eval_legendre(n, 2 * (xn - 2.0) / 0.5 + 1)
    window = x >= 1.5
    np.testing.assert_allclose(R[window].numpy(), expected[window.numpy()], atol=1e-12)
    assert torch.isnan(R[~window]).all()


# --- Online projection against quadrature -------------------------------------------------------


def smooth(x):
    return np.sin(6 * np.pi * x) + x**2


def samples(L, T=1.0):
    t = np.arange(1, L + 1) * T / L  # t_i = (i+1) dt
    return t, torch.tensor(smooth(t))


def legs_quadrature(f, t, N):
    """c_n(t) = (1/t) ∫_0^t f(x) sqrt(2n+1) P_n(2x/t - 1) dx by 200-point Gauss–Legendre."""
    z, w = npleg.leggauss(200)
    P = np.stack([np.sqrt(2 * n + 1) * npleg.legval(z, np.eye(N)[n]) for n in range(N)], 1)
    return (w[:, None] * f((z + 1) * t / 2)[:, None] * P).sum(0) / 2


def test_legs_online_coefficients_match_quadrature_at_second_order():
    # Measured: max error 8.5e-5 at L = 1000 and 2.2e-5 at L = 2000 (ratio 3.9).
    N = 16
    errors = []
    for L in (1000, 2000):
        _, u = samples(L)
        c = hippo.project(u, "legs", N)
        errors.append(np.abs(c[-1].numpy() - legs_quadrature(smooth, 1.0, N)).max())
    assert errors[1] < 1e-4
    assert 3.0 < errors[0] / errors[1] < 5.0  # the bilinear rule is second order
    # ... and at an intermediate time, from the same run: c_i summarizes [0, t_i].
    c = hippo.project(samples(2000)[1], "legs", N)
    np.testing.assert_allclose(c[499].numpy(), legs_quadrature(smooth, 0.25, N), atol=1e-4)


def test_legt_and_lagt_coefficients_match_quadrature():
    # Measured at L = 1000: LegT 4.7e-5 (θ = 0.3), LagT 2.0e-5 (θ = 0.1).
    _, u = samples(1000)
    N = 12
    c = hippo.project(u, "legt", N, dt=1e-3, theta=0.3)[-1].numpy()
    ref = [integrate.quad(lambda x, n=n: smooth(x) * np.sqrt(2 * n + 1)
                          * special.eval_legendre(n, 2 * (x - 1) / 0.3 + 1), 0.7, 1.0)[0] / 0.3
           for n in range(N)]
    np.testing.assert_allclose(c, ref, atol=2e-4)
    c = hippo.project(u, "lagt", N, dt=1e-3, theta=0.1)[-1].numpy()
    ref = [integrate.quad(lambda x, n=n: smooth(x) * special.eval_laguerre(n, (1 - x) / 0.1)
                          * np.exp(-(1 - x) / 0.1), 0.0, 1.0, limit=400)[0] / 0.1
           for n in range(N)]
    np.testing.assert_allclose(c, ref, atol=1e-4)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_legs_reconstructs_a_low_degree_polynomial_almost_exactly(degree):
    # A polynomial of degree < N is its own projection: the closed form is the oracle.
    # Measured max error: 5e-6 (degree 2, L = 1000); tolerance 5e-5.
    coeffs = [1.0, 2.0, -3.0, 1.5][: degree + 1]
    t = np.arange(1, 1001) / 1000 * 2.0  # on [0, 2]: no special role for t = 1
    u = torch.tensor(np.polynomial.polynomial.polyval(t, coeffs))
    c = hippo.project(u, "legs", 4, dt=2e-3)[-1]
    u_hat = hippo.reconstruct(c, "legs", t=2.0, s=t)
    np.testing.assert_allclose(u_hat.numpy(), u.numpy(), atol=5e-5)


def test_legs_error_falls_with_N_for_a_smooth_signal():
    t, u = samples(1000)
    c = hippo.project(u, "legs", 32)[-1]
    errors = [hippo.reconstruction_error(c[:N], u, t=1.0, s=t) for N in (4, 8, 16, 32)]
    assert np.all(np.diff(errors) < 0)
    assert errors[-1] < 1e-3


def test_legt_remembers_the_recent_window_and_nothing_older():
    t, u = samples(1000)
    c = hippo.project(u, "legt", 16, dt=1e-3, theta=0.3)[-1]
    u_hat = hippo.reconstruct(c, "legt", t=1.0, s=t, theta=0.3)
    window = t >= 0.7
    np.testing.assert_allclose(u_hat.numpy()[window], u.numpy()[window], atol=2e-3)
    assert torch.isnan(u_hat[~torch.from_numpy(window)]).all()


def test_lagt_is_accurate_recently_and_forgets_the_distant_past():
    t, u = samples(1000)
    c = hippo.project(u, "lagt", 16, dt=1e-3, theta=0.05)[-1]
    error = (hippo.reconstruct(c, "lagt", t=1.0, s=t, theta=0.05) - u).abs()
    assert error[-100:].max() < 1e-2  # the last 2θ
    assert error[:100].max() > 1e-1  # 18θ ago: weighted by e^-18, forgotten


def test_reconstruction_error_is_the_rms_over_the_covered_past():
    t, u = samples(400)
    c = hippo.project(u, "legt", 8, dt=1 / 400, theta=0.25)[-1]
    u_hat = hippo.reconstruct(c, "legt", t=1.0, s=t, theta=0.25).numpy()
    window = t >= 0.75  # the oracle: numpy over the window only
    expected = np.sqrt(np.mean((u_hat[window] - u.numpy()[window]) ** 2))
    got = hippo.reconstruction_error(c, u, "legt", t=1.0, s=t, theta=0.25)
    assert got == pytest.approx(expected, rel=1e-12)


# --- Invariants of the recurrence ---------------------------------------------------------------


def test_legs_is_nested_and_timescale_free():
    _, u = samples(300)
    c = hippo.project(u, "legs", 12)
    torch.testing.assert_close(hippo.project(u, "legs", 5), c[..., :5], rtol=0, atol=1e-12)
    torch.testing.assert_close(hippo.project(u, "legs", 12, dt=1e-3), c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("measure", hippo.MEASURES)
def test_batched_equals_one_at_a_time(measure):
    u = torch.randn(3, 50, dtype=torch.float64)
    c = hippo.project(u, measure, 6, dt=0.01, theta=0.2)
    assert c.shape == (3, 50, 6)
    for b in range(3):
        torch.testing.assert_close(c[b], hippo.project(u[b], measure, 6, dt=0.01, theta=0.2),
                                   rtol=1e-12, atol=1e-12)


def test_a_constant_is_remembered_exactly_by_legs():
    c = hippo.project(torch.full((20,), 2.5, dtype=torch.float64), "legs", 4)
    expected = torch.zeros(20, 4, dtype=torch.float64)
    expected[:, 0] = 2.5  # u = 2.5 p_0: the fixed point A c + B u = 0
    torch.testing.assert_close(c, expected, rtol=0, atol=1e-12)


# --- The explorer ------------------------------------------------------------------------------


def test_plot_memory_and_explorer_run_without_a_browser():
    fig, ax = plt.subplots()
    ax_out, rmse_small = hippo.plot_memory(ax, "sines", 8, "legs", L=400)
    _, rmse_large = hippo.plot_memory(ax, "sines", 32, "legs", L=400)
    assert ax_out is ax and 0 < rmse_large < rmse_small
    _, rmse_window = hippo.plot_memory(ax, "steps", 16, "legt", L=400, theta=0.2)
    assert math.isfinite(rmse_window)
    plt.close(fig)
    widget = hippo.explorer()
    assert [w.description for w in widget.children[:4]] == ["signal", "N", "measure",
                                                             "θ (LegT, LagT)"]
    widget.children[1].value = 4  # the update runs
    plt.close("all")


# --- Bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: hippo.legs(0), ValueError, "N must be an int >= 1, got 0"),
    (lambda: hippo.legt(2.5), TypeError, "N must be an int >= 1, got float (2.5)"),
    (lambda: hippo.lagt(True), TypeError, "N must be an int >= 1, got bool"),
    (lambda: hippo.legs_symbolic(-1), ValueError, "got -1"),
    (lambda: hippo.transition("legx", 3), ValueError, "measure must be one of"),
    (lambda: hippo.project(torch.ones(5), "legt", 3, dt=0), ValueError, "dt must be a positive"),
    (lambda: hippo.project(torch.ones(5), "legt", 3, theta=-1.0), ValueError, "theta must be"),
    (lambda: hippo.project(torch.ones(5), "legt", 3, dt=math.inf), ValueError,
     "dt must be a positive finite number, got inf"),
    (lambda: hippo.project(torch.ones(5), "lagt", 3, theta=math.inf), ValueError,
     "theta must be a positive finite number, got inf"),
    (lambda: hippo.basis("legs", 3, t=math.inf, s=[0.5]), ValueError,
     "t must be a positive finite number, got inf"),
    (lambda: hippo.project(torch.ones(5, dtype=torch.int64)), ValueError,
     "got shape (5,) and dtype torch.int64"),
    (lambda: hippo.project(torch.ones(2, 3, 4)), ValueError, "(l,) or (b, l), got shape (2, 3, 4)"),
    (lambda: hippo.project(torch.ones(0)), ValueError, "non-empty"),
    (lambda: hippo.reconstruct(torch.tensor(1.0), t=1.0, s=[0.5]), ValueError, "shape (..., n)"),
    (lambda: hippo.reconstruct(torch.ones(3), t=0.0, s=[0.5]), ValueError, "t must be a positive"),
    (lambda: hippo.signal("noise", [0.5]), ValueError, "signal must be one of"),
    (lambda: hippo.basis("legs", 4, t=1.0, s=0.5), ValueError,
     "s must be times of shape (m,), got shape ()"),
    (lambda: hippo.reconstruct(torch.ones(4), t=1.0, s=0.5), ValueError,
     "s must be times of shape (m,), got shape ()"),
    (lambda: hippo.basis("legt", 4, t=1.0, s=[[0.5]]), ValueError,
     "s must be times of shape (m,), got shape (1, 1)"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


# --- Offline: the projection by quadrature, the definition project() must match --------------


def test_offline_projection_of_a_line_has_a_closed_form():
    # u(s) = s on [0, t]: s = (t/2)(1 + z) = (t/2) p_0 + (t / (2 sqrt 3)) p_1, nothing more
    c = hippo.project_offline(lambda s: s, "legs", 5, t=2.0)
    np.testing.assert_allclose(c.numpy(), [1.0, 1 / np.sqrt(3), 0, 0, 0], atol=1e-14)
    c = hippo.project_offline(lambda s: torch.ones_like(s), "lagt", 3, t=0.4, theta=0.2)
    # u = 1 since s = 0: c_0 = ∫_0^{t/θ} e^{-x} dx = 1 - e^{-2}
    assert float(c[0]) == pytest.approx(1 - np.exp(-2.0), rel=1e-13)


@pytest.mark.parametrize(("measure", "theta"), [("legs", 1.0), ("legt", 0.3), ("lagt", 0.1)])
def test_offline_projection_matches_scipy_quad(measure, theta):
    def smooth(s):
        return np.sin(5 * s) + s**2

    c = hippo.project_offline(lambda s: torch.sin(5 * s) + s**2, measure, 6, t=1.0,
                              theta=theta).numpy()
    if measure == "legs":
        ref = [integrate.quad(lambda s, n=n: smooth(s) * np.sqrt(2 * n + 1)
                              * special.eval_legendre(n, 2 * s - 1), 0, 1)[0] for n in range(6)]
    elif measure == "legt":
        ref = [integrate.quad(lambda s, n=n: smooth(s) * np.sqrt(2 * n + 1)
                              * special.eval_legendre(n, 2 * (s - 1) / theta + 1), 1 - theta,
                              1)[0] / theta for n in range(6)]
    else:
        ref = [integrate.quad(lambda s, n=n: smooth(s) * special.eval_laguerre(n, (1 - s) / theta)
                              * np.exp(-(1 - s) / theta), 0, 1, limit=200)[0] / theta
               for n in range(6)]
    np.testing.assert_allclose(c, ref, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize(("measure", "theta"), [("legs", 1.0), ("lagt", 0.05)])
def test_online_coefficients_converge_to_the_offline_projection_at_second_order(measure, theta):
    """The chapter's claim: the ODE run online reaches the optimal projection; the bilinear
    rule's error falls by about 4 each time the samples double."""
    def f(s):
        return hippo.signal("bumps", s) + 0.3 * hippo.signal("sines", s)

    exact = hippo.project_offline(f, measure, 16, t=1.0, theta=theta)
    gaps = []
    for L in (500, 1000, 2000):
        s = torch.arange(1, L + 1, dtype=torch.float64) / L
        online = hippo.project(f(s), measure, 16, dt=1 / L, theta=theta)[-1]
        gaps.append(float((online - exact).abs().max()))
    assert gaps[-1] < 1e-4
    assert 3.0 < gaps[0] / gaps[1] < 5.0 and 3.0 < gaps[1] / gaps[2] < 5.0


def test_legt_online_is_the_projection_only_as_N_grows():
    """LegT's ODE reads the window's far end u(t - θ) back from its own N coefficients, so it
    is the projection up to a truncation error that shrinks with N, not with the samples."""
    def f(s):
        return hippo.signal("bumps", s) + 0.3 * hippo.signal("sines", s)

    s = torch.arange(1, 4001, dtype=torch.float64) / 4000
    gap = {}
    for N in (16, 32):
        online = hippo.project(f(s), "legt", N, dt=1 / 4000, theta=0.3)[-1]
        gap[N] = float((online - hippo.project_offline(f, "legt", N, t=1.0, theta=0.3)).abs().max())
    assert gap[32] < gap[16] / 10


def test_project_passes_dt_to_the_legs_run(monkeypatch):
    """LegS's steps are computed from the sample times t_i = (i+1) dt: dt must reach them,
    or "the same memory whatever dt" would compare a computation with itself."""
    seen = []
    run = hippo._run_legs
    monkeypatch.setattr(hippo, "_run_legs", lambda A, B, u, dt: seen.append(dt) or run(A, B, u, dt))
    _, u = samples(50)
    fast, slow = hippo.project(u, "legs", 6, dt=1e-6), hippo.project(u, "legs", 6, dt=60.0)
    assert seen == [1e-6, 60.0]
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="u must map times"):
        hippo.project_offline(lambda s: s[:3], "legs", 2, t=1.0)
# --- what the mutation tests found untested (make mutants) ------------------------------------


def test_plot_memory_draws_the_signal_and_its_reconstruction():
    """Protects the explorer's figure: the signal (wide, pale) and the reconstruction at t = 1
    from the last coefficients, the labels, x from 0 to 1, y padded by 30 % of the signal's
    range, the title with N and the RMSE, and the defaults (bumps, N = 16, LegS, L = 1000)."""
    from matplotlib.colors import to_rgba

    from sseq.viz import PALETTE

    fig, ax = plt.subplots()
    _, rmse = hippo.plot_memory(ax, "steps", 8, "legt", L=200, theta=0.5)
    signal_line, recon = ax.get_lines()
    x = torch.arange(1, 201, dtype=torch.float64) / 200
    u = hippo.signal("steps", x)
    c = hippo.project(u, "legt", 8, dt=1 / 200, theta=0.5)[-1]
    np.testing.assert_allclose(signal_line.get_xdata(), x.numpy())
    np.testing.assert_allclose(signal_line.get_ydata(), u.numpy())
    np.testing.assert_allclose(recon.get_ydata(),
                               hippo.reconstruct(c, "legt", t=1.0, s=x, theta=0.5).numpy())
    assert rmse == pytest.approx(float(hippo.reconstruction_error(c, u, "legt", t=1.0, s=x,
                                                                  theta=0.5)))
    assert signal_line.get_linewidth() == 3 and signal_line.get_alpha() == 0.5
    assert to_rgba(signal_line.get_color()) == to_rgba(PALETTE["theory"])
    assert to_rgba(recon.get_color()) == to_rgba(PALETTE["state"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "signal u(s)", "legt reconstruction, N = 8"]
    assert ax.get_legend()._loc == 2 and ax.get_legend()._ncols == 2  # upper left
    lo, hi = float(u.min()), float(u.max())
    np.testing.assert_allclose(ax.get_ylim(), (lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo)))
    assert ax.get_xlim() == (0, 1)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("time s (seconds)", "u(s)")
    assert ax.get_title() == f"What 8 numbers remember at t = 1 s (RMSE {rmse:.3f})"
    ax.clear()
    _, rmse_default = hippo.plot_memory(ax)
    xs = torch.arange(1, 1001, dtype=torch.float64) / 1000
    u = hippo.signal("bumps", xs)
    c = hippo.project(u, "legs", 16, dt=1e-3, theta=0.3)[-1]
    assert rmse_default == pytest.approx(float(hippo.reconstruction_error(
        c, u, "legs", t=1.0, s=xs, theta=0.3)))
    plt.close(fig)


def test_explorer_controls_and_redraw(monkeypatch):
    """Protects the explorer's controls (the signals, N from 1 to 64 at 16, the measures,
    θ from 0.02 to 1 by 0.02 at 0.3) and its redraw: a 6.4 × 3.4 figure of the chosen case
    (ipywidgets swallows errors in the update, so the drawn figure is what is checked)."""
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    widget = hippo.explorer()
    signal_name, N, measure, theta = widget.children[:4]
    assert list(signal_name.options) == ["bumps", "chirp", "sines", "steps"]
    assert signal_name.value == "bumps"
    assert (N.value, N.min, N.max) == (16, 1, 64)
    assert list(measure.options) == list(hippo.MEASURES) and measure.value == "legs"
    assert (theta.value, theta.min, theta.max, theta.step) == (0.3, 0.02, 1.0, 0.02)
    shown.clear()
    measure.value = "legt"
    theta.value = 0.5
    N.value = 4
    fig = shown[-1]
    assert tuple(fig.get_size_inches()) == pytest.approx((6.4, 3.4))
    (ax,) = fig.get_axes()
    assert ax.get_lines()[1].get_label() == "legt reconstruction, N = 4"
    _, other = plt.subplots()
    hippo.plot_memory(other, "bumps", 4, "legt", theta=0.5)
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), other.get_lines()[1].get_ydata())
    _, rmse = hippo.plot_memory(plt.subplots()[1], "bumps", 4, "legt", theta=0.5)
    assert ax.get_title() == f"What 4 numbers remember at t = 1 s (RMSE {rmse:.3f})"
    plt.close("all")


def test_basis_of_plain_lists_is_float64_and_theta_defaults_to_one():
    """Protects basis, reconstruct, reconstruction_error and signal on plain Python lists:
    computed in float64 (scipy's polynomials as the oracle, 1e-12), θ = 1 by default, and
    θ named when it is not positive."""
    x = [0.05, 0.37, 0.61, 0.9]
    xs, r = np.array(x), np.sqrt(2 * np.arange(5) + 1)
    legs = hippo.basis("legs", 5, t=1.0, s=x)
    assert legs.dtype == torch.float64
    want = r * np.stack([special.eval_legendre(n, 2 * xs - 1) for n in range(5)], axis=-1)
    np.testing.assert_allclose(legs.numpy(), want, rtol=1e-12, atol=1e-14)
    legt = hippo.basis("legt", 5, t=1.5, s=x)  # θ = 1: the window [0.5, 1.5]
    assert torch.isnan(legt[:2]).all() and not torch.isnan(legt[2:]).any()
    want = r * np.stack([special.eval_legendre(n, 2 * (xs[2:] - 1.5) + 1) for n in range(5)],
                        axis=-1)
    np.testing.assert_allclose(legt[2:].numpy(), want, rtol=1e-12, atol=1e-14)
    lagt = hippo.basis("lagt", 5, t=1.0, s=x)
    want = np.stack([special.eval_laguerre(n, 1.0 - xs) for n in range(5)], axis=-1)
    np.testing.assert_allclose(lagt.numpy(), want, rtol=1e-12, atol=1e-14)
    c = [0.3, -0.2, 0.1, 0.05, -0.01]
    got = hippo.reconstruct(c, "legt", t=1.5, s=x)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got[2:].numpy(), (legt[2:] @ torch.tensor(c, dtype=torch.float64))
                               .numpy(), rtol=1e-12)
    u = [1.0, 2.0, 0.5, 0.25]
    err = hippo.reconstruction_error(c, u, "legt", t=1.5, s=x)
    assert err == pytest.approx(float(np.sqrt(np.mean((got[2:].numpy() - u[2:]) ** 2))),
                                rel=1e-12)
    with pytest.raises(ValueError, match="^theta must be a positive finite number, got 0$"):
        hippo.basis("legt", 5, t=1.0, s=x, theta=0)
    np.testing.assert_allclose(hippo.signal("chirp", x).numpy(),
                               np.sin(2 * np.pi * (2 * xs + 6 * xs**2)), rtol=1e-12, atol=1e-14)
    assert hippo.signal("chirp", x).dtype == torch.float64


def test_project_and_plot_memory_defaults_and_precision():
    """Protects project's defaults (N = 32, dt = 1, θ = 1), its float64 result for float32
    samples, plot_memory's θ = 0.3 for the windowed measures and its x axis in seconds, and a
    number given as a string refused by name."""
    u = hippo.signal("sines", torch.linspace(0.01, 1, 50))
    for measure in hippo.MEASURES:
        torch.testing.assert_close(hippo.project(u, measure),
                                   hippo.project(u, measure, 32, dt=1.0, theta=1.0),
                                   rtol=0, atol=0)
    c32 = hippo.project(u.float(), "legt", 8, dt=0.02, theta=0.5)
    assert c32.dtype == torch.float64
    torch.testing.assert_close(c32, hippo.project(u.float().double(), "legt", 8, dt=0.02,
                                                  theta=0.5), rtol=0, atol=0)
    fig, ax = plt.subplots()
    _, rmse = hippo.plot_memory(ax, "steps", 8, "legt", L=200)
    _, rmse_03 = hippo.plot_memory(ax, "steps", 8, "legt", L=200, theta=0.3)
    assert rmse == rmse_03
    np.testing.assert_allclose(ax.get_lines()[1].get_xdata(), np.arange(1, 201) / 200)
    plt.close(fig)
    with pytest.raises(ValueError, match="^t must be a positive finite number, got '1'$"):
        hippo.basis("legs", 4, t="1", s=[0.5])
