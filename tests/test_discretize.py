"""sseq.discretize against scipy.signal.cont2discrete (float64, 1e-10), plus invariants."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
import torch
from scipy.signal import cont2discrete

from sseq import discretize

matplotlib.use("Agg")

RULES = ["zoh", "bilinear", "euler"]
TOL = 1e-10  # float64 against scipy


def scipy_discretize(A, B, dt, rule):
    """The oracle: scipy's (A_bar, B_bar) for a dense A (n, n) and B (n, m)."""
    n, m = B.shape
    A_bar, B_bar, *_ = cont2discrete((A, B, np.eye(n), np.zeros((n, m))), dt, method=rule)
    return A_bar, B_bar


def _random(shape, complex_=False, seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal(shape)
    return x + 1j * g.standard_normal(shape) if complex_ else x


DENSE_CASES = {
    "dense": (_random((5, 5)), _random((5,), seed=1)),
    "dense multi-input": (_random((5, 5)), _random((5, 3), seed=1)),
    "dense complex": (_random((4, 4), True), _random((4, 2), True, seed=1)),
    "singular (integrator chain)": (np.diag([1.0, 1.0], k=1), np.array([0.0, 0.0, 1.0])),
    "zero A": (np.zeros((3, 3)), _random((3, 2), seed=2)),
    "HiPPO-LegS-like": (-np.tril(np.ones((6, 6))) - np.diag(np.arange(6.0)), np.ones(6)),
}


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", list(DENSE_CASES))
def test_dense_matches_scipy(rule, case):
    A, B = DENSE_CASES[case]
    A_bar, B_bar = getattr(discretize, rule)(torch.tensor(A), torch.tensor(B), 0.37)
    want_A, want_B = scipy_discretize(A, B.reshape(len(B), -1), 0.37, rule)
    assert A_bar.shape == A.shape and B_bar.shape == B.shape
    np.testing.assert_allclose(A_bar.numpy(), want_A, rtol=0, atol=TOL)
    np.testing.assert_allclose(B_bar.numpy(), want_B.reshape(B.shape), rtol=0, atol=TOL)


DIAGONAL_CASES = {
    "real": (-np.abs(_random((6,))), _random((6,), seed=1)),
    "complex": (_random((6,), True), _random((6,), True, seed=1)),
    "with zeros (singular)": (np.array([0.0, -1.0, 0.0, 2.5]), np.array([1.0, 2.0, 3.0, 4.0])),
    "tiny": (np.array([1e-13, -1e-9, 1e-6 + 1e-7j]), np.ones(3)),
    "multi-input": (_random((4,), True), _random((4, 3), seed=3)),
}


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", list(DIAGONAL_CASES))
def test_diagonal_matches_scipy(rule, case):
    A, B = DIAGONAL_CASES[case]
    A_bar, B_bar = getattr(discretize, rule)(torch.tensor(A), torch.tensor(B), 0.37)
    want_A, want_B = scipy_discretize(np.diag(A), B.reshape(len(B), -1), 0.37, rule)
    np.testing.assert_allclose(A_bar.numpy(), np.diag(want_A), rtol=0, atol=TOL)
    np.testing.assert_allclose(B_bar.numpy(), want_B.reshape(B.shape), rtol=0, atol=TOL)


@pytest.mark.parametrize("rule", RULES)
def test_batched_diagonal_with_a_step_per_channel(rule):
    """A (d, n) diagonal per channel and dt (d, 1): each channel as scipy discretizes it."""
    A, B = _random((3, 4), True), _random((3, 4), True, seed=1)
    dt = np.array([[0.01], [0.3], [2.0]])
    A_bar, B_bar = getattr(discretize, rule)(torch.tensor(A), torch.tensor(B), torch.tensor(dt))
    for h in range(3):
        want_A, want_B = scipy_discretize(np.diag(A[h]), B[h][:, None], dt[h, 0], rule)
        np.testing.assert_allclose(A_bar[h].numpy(), np.diag(want_A), rtol=0, atol=TOL)
        np.testing.assert_allclose(B_bar[h].numpy(), want_B[:, 0], rtol=0, atol=TOL)


@pytest.mark.parametrize("rule", RULES)
def test_square_batch_of_diagonals_needs_the_flag(rule):
    """A (n, n) is dense by default; diagonal=True reads its rows as diagonals."""
    A, B = -np.abs(_random((3, 3))), _random((3, 3), seed=1)
    fn = getattr(discretize, rule)
    A_bar, _ = fn(torch.tensor(A), torch.tensor(B), 0.2, diagonal=True)
    want = np.stack([np.diag(scipy_discretize(np.diag(a), b[:, None], 0.2, rule)[0])
                     for a, b in zip(A, B, strict=True)])
    np.testing.assert_allclose(A_bar.numpy(), want, rtol=0, atol=TOL)
    dense, _ = fn(torch.tensor(A), torch.tensor(B), 0.2)
    np.testing.assert_allclose(dense.numpy(), scipy_discretize(A, B, 0.2, rule)[0], atol=TOL)


@pytest.mark.parametrize("rule", RULES)
def test_float32_stays_float32(rule):
    A_bar, B_bar = getattr(discretize, rule)(-torch.rand(4), torch.ones(4), 0.1)
    assert A_bar.dtype == B_bar.dtype == torch.float32


def test_zoh_diagonal_gradient_matches_finite_differences():
    A = torch.tensor([-0.5 + 3j, -2.0 + 0.1j], dtype=torch.complex128, requires_grad=True)
    dt = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    B = torch.ones(2, dtype=torch.complex128)
    torch.autograd.gradcheck(lambda a, s: discretize.zoh(a, B, s), (A, dt))


@pytest.mark.parametrize("rule", ["zoh", "bilinear"])
def test_stable_rules_keep_eigenvalues_in_the_unit_disk(rule):
    """Re λ < 0 ⇒ |λ_bar| < 1 for every Δ (ZOH: |e^{Δλ}|; bilinear: a Möbius map)."""
    g = torch.Generator().manual_seed(0)
    A = torch.complex(-torch.rand(500, generator=g, dtype=torch.float64) * 10 - 1e-3,
                      torch.randn(500, generator=g, dtype=torch.float64) * 100)
    for dt in (1e-4, 0.1, 1.0, 100.0):
        A_bar, _ = getattr(discretize, rule)(A, torch.ones_like(A), dt)
        assert (A_bar.abs() < 1).all()


def test_euler_leaves_the_unit_disk_for_large_steps():
    A = torch.tensor([-1.0], dtype=torch.float64)
    assert discretize.euler(A, A, 1.5)[0].abs().item() < 1  # |1 - 1.5| = 0.5
    assert discretize.euler(A, A, 3.0)[0].abs().item() > 1  # |1 - 3| = 2




# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dt", [0.0, -0.1, torch.tensor([[0.1], [-0.2]])])
def test_non_positive_dt_is_refused(rule, dt):
    A = -torch.rand(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="dt must be positive"):
        getattr(discretize, rule)(A, torch.ones(3, dtype=torch.float64), dt)


@pytest.mark.parametrize("rule", RULES)
def test_integer_tensors_are_refused(rule):
    fn = getattr(discretize, rule)
    with pytest.raises(TypeError, match="A must be a floating-point"):
        fn(torch.tensor([[1, 0], [0, 1]]), torch.ones(2), 0.1)
    with pytest.raises(TypeError, match="B must be a floating-point"):
        fn(torch.eye(2), torch.ones(2, dtype=torch.int64), 0.1)
    with pytest.raises(TypeError, match="dt must be a floating-point"):
        fn(-torch.rand(2, 3), torch.ones(3), torch.tensor([[1], [2]]))


@pytest.mark.parametrize("rule", RULES)
def test_shape_mismatches_are_refused(rule):
    fn = getattr(discretize, rule)
    with pytest.raises(ValueError, match=r"B must be \(n,\) or \(n, m\) with n=3"):
        fn(torch.eye(3), torch.ones(4), 0.1)
    with pytest.raises(ValueError, match="B must have the state size n=3"):
        fn(-torch.rand(3), torch.ones(4), 0.1)
    with pytest.raises(ValueError, match="dt of shape .* does not broadcast against A"):
        fn(-torch.rand(2, 3), torch.ones(3), torch.full((5, 1), 0.1))
    with pytest.raises(ValueError, match=r"B of shape \(4, 3\) does not broadcast against A"):
        fn(-torch.rand(2, 3), torch.ones(4, 3), 0.1)
    with pytest.raises(ValueError, match="dt must be a scalar for a dense A"):
        fn(torch.eye(3), torch.ones(3), torch.full((3,), 0.1))
    with pytest.raises(ValueError, match=r"a dense A must be square"):
        fn(torch.ones(2, 3), torch.ones(3), 0.1, diagonal=False)
    with pytest.raises(ValueError, match="got a scalar"):
        fn(torch.tensor(-1.0), torch.ones(1), 0.1)


@pytest.mark.parametrize("rule", RULES)
def test_empty_state_and_multi_input_dt_are_refused(rule):
    """Issue 9: a (0, 0) A failed in a reshape, and dt (3, 1) with B (n, m) in a product."""
    fn = getattr(discretize, rule)
    for A, B in ((torch.zeros(0, 0), torch.zeros(0)), (torch.zeros(0), torch.zeros(0))):
        with pytest.raises(ValueError, match=r"A must have n >= 1 state dimensions, got shape "
                                             rf"{re.escape(str(tuple(A.shape)))}"):
            fn(A, B, 0.1)
    with pytest.raises(ValueError, match=r"dt of shape \(3, 1\) must broadcast to A's shape "
                                         r"\(3,\) for a multi-input B \(n, m\) = \(3, 2\)"):
        fn(-torch.rand(3), torch.ones(3, 2), torch.rand(3, 1) + 0.1)
    A_bar, B_bar = fn(-torch.rand(3), torch.ones(3, 2), torch.rand(3) + 0.1)  # dt per mode: fine
    assert A_bar.shape == (3,) and B_bar.shape == (3, 2)



# --- what the mutation tests found untested (make mutants) ------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_lists_and_arrays_are_read_as_tensors(rule):
    """Protects: A and B given as nested lists or NumPy arrays give the tensors' results; an
    object that is no array is refused by name."""
    fn = getattr(discretize, rule)
    A, B = _random((3, 3)), _random((3,), seed=1)
    cases = [((A, B), (torch.from_numpy(A), torch.from_numpy(B))),  # float64 stays float64
             ((A.tolist(), B.tolist()), (torch.tensor(A.tolist()), torch.tensor(B.tolist())))]
    for given, tensors in cases:
        for g, w in zip(fn(*given, 0.1), fn(*tensors, 0.1), strict=True):
            torch.testing.assert_close(g, w, rtol=0, atol=0)
    with pytest.raises(TypeError, match="B must be a tensor, got object"):
        fn(A, object(), 0.1)


def test_is_diagonal_flag_overrides_the_guess_only_where_it_can():
    """Protects is_diagonal's rule: ``diagonal=False`` needs a square 2-D A; ``True`` takes any
    shape as diagonals."""
    assert discretize.is_diagonal(torch.ones(3, 3), False) is False
    assert discretize.is_diagonal(torch.ones(2, 3), True) is True
    assert discretize.is_diagonal(torch.ones(3, 3), True) is True
    for shape in [(3,), (2, 3), (2, 2, 2)]:
        with pytest.raises(ValueError, match=rf"a dense A must be square \(n, n\), got shape "
                                             rf"{re.escape(str(shape))}"):
            discretize.is_diagonal(torch.ones(shape), False)


@pytest.mark.parametrize("rule", RULES)
def test_complex_dt_must_be_real_and_positive(rule):
    """Protects: a complex dt is accepted when it is real (zero imaginary part), refused
    otherwise, and the message lists a small dt, shows a large one as a tensor."""
    fn = getattr(discretize, rule)
    A = -torch.rand(2, 3, dtype=torch.float64) - 0.1
    B = torch.ones(3, dtype=torch.float64)
    real = fn(A, B, 0.1)
    as_complex = fn(A, B, torch.tensor(0.1 + 0j, dtype=torch.complex128))
    for got, want in zip(as_complex, real, strict=True):
        torch.testing.assert_close(got, want.to(torch.complex128), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="dt must be positive"):
        fn(A, B, torch.tensor(0.1 + 0.1j, dtype=torch.complex128))
    with pytest.raises(ValueError, match=r"dt must be positive, got \[\[0\.1\], \[-0\.1\]\]$"):
        fn(A, B, torch.tensor([[0.1], [-0.1]], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"dt must be positive, got tensor\("):
        fn(A.repeat(4, 1), B, torch.tensor([0.1] * 7 + [-0.1], dtype=torch.float64)[:, None])


@pytest.mark.parametrize("rule", RULES)
def test_diagonal_scalar_B_and_multi_input_dt_are_refused_by_name(rule):
    """Protects the diagonal checks: a 0-d B has no state dimension (even for n = 1), and a dt
    that does not broadcast against a 1-D A with B (n, m) is named as dt."""
    fn = getattr(discretize, rule)
    for n in (1, 3):
        with pytest.raises(ValueError, match=rf"B must have the state size n={n}"):
            fn(-torch.ones(n), torch.tensor(1.0), 0.1)
    with pytest.raises(ValueError, match=r"^dt of shape \(2,\) does not broadcast against A "
                                         r"of shape \(3,\)$"):
        fn(-torch.rand(3), torch.ones(3, 2), torch.rand(2) + 0.1)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("diagonal", [False, True])
def test_mixed_precision_inputs_are_promoted_together(rule, diagonal):
    """Protects: A, B and dt are computed in their promoted dtype (float32 A with float64 B
    gives float64 results, equal to an all-float64 call), whichever of them is wider."""
    fn = getattr(discretize, rule)
    A = torch.from_numpy(-np.eye(3) + 0.1 * _random((3, 3))) if not diagonal else \
        -torch.rand(3, dtype=torch.float64) - 0.1
    B = torch.from_numpy(_random((3,), seed=1))
    dt = torch.tensor(0.1, dtype=torch.float64)
    for A_, B_, dt_ in ((A.float(), B, dt), (A, B.float(), dt), (A.float(), B.float(), dt)):
        got = fn(A_, B_, dt_)
        want = fn(A_.double(), B_.double(), dt)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == torch.float64
            torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_zoh_gradient_is_finite_where_a_diagonal_A_is_zero():
    """Protects zoh's A = 0 guard: B_bar's limit Δ·B at A = 0 comes with a finite gradient
    (a guard that let expm1(0)/0 through would give NaN gradients, though the forward pass
    selects the limit)."""
    A = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64, requires_grad=True)
    A_bar, B_bar = discretize.zoh(A, torch.ones(3, dtype=torch.float64), 0.5)
    torch.testing.assert_close(B_bar[[0, 2]], torch.full((2,), 0.5, dtype=torch.float64))
    (A_bar.sum() + B_bar.sum()).backward()
    assert torch.isfinite(A.grad).all(), A.grad
