"""Chapter 4's costs of the two views: the memory claims hold, operator by operator."""

from __future__ import annotations

import torch

from sseq import ssm, views


def test_each_view_computes_the_same_outputs():
    A_bar, B_bar, C = views.random_diagonal_ssm(3, 8)
    u = torch.randn(1, 50, 3)
    y_rec = ssm.recurrent(A_bar, B_bar, C, u, diagonal=True)
    y_conv = ssm.convolve(u, ssm.kernel(A_bar, B_bar, C, 50, diagonal=True))
    torch.testing.assert_close(y_conv, y_rec, rtol=1e-4, atol=1e-4)
    assert (A_bar.abs() - 0.99).abs().max() < 1e-6


def test_the_convolution_holds_n_times_more_than_the_recurrence():
    """The Vandermonde kernel materializes n·L complex64 powers per channel; the recurrence
    holds a state and its outputs, O(L) whatever n."""
    d, n, L = 2, 32, 512
    cost = views.view_cost([L], d=d, n=n, repeat=1)
    assert set(cost) == set(views.VIEWS)
    powers = d * n * L * 8  # complex64 bytes
    assert cost["convolution"]["bytes"][0] >= powers
    assert cost["recurrence"]["bytes"][0] < powers / 4
    assert cost["FFT alone"]["bytes"][0] < powers / 4
    assert all(s > 0 for view in cost.values() for s in view["seconds"])


def test_the_random_ssm_is_seeded_stable_and_complex64():
    """random_diagonal_ssm: A_bar, B_bar and C are each (d, n) complex64 (d ≠ n here); the
    eigenvalues have modulus 0.99 and angles drawn in [0, 1) radians (slow, stable
    oscillations), spread over that range; B_bar and C are complex Gaussians."""
    d, n = 5, 40
    A_bar, B_bar, C = views.random_diagonal_ssm(d, n)
    for x in (A_bar, B_bar, C):
        assert x.shape == (d, n) and x.dtype == torch.complex64
    torch.testing.assert_close(A_bar.abs(), torch.full((d, n), 0.99), rtol=0, atol=1e-6)
    angle = A_bar.angle()
    assert angle.min() >= 0 and angle.max() < 1
    assert angle.min() < 0.05 and angle.max() > 0.95  # 200 uniform draws fill [0, 1)
    for x in (B_bar, C):  # E|z|² = 1 for a standard complex Gaussian; both parts random
        assert 0.7 < x.abs().square().mean() < 1.3
        assert x.real.std() > 0.4 and x.imag.std() > 0.4


def test_the_random_ssm_uses_its_own_generator():
    """The same seed gives the same system whatever the global RNG's state, which is left
    alone; the default seed is 0, and seed 1 gives another system in each of the three."""
    torch.manual_seed(123)
    first = views.random_diagonal_ssm(3, 4)
    torch.manual_seed(456)
    before = torch.get_rng_state()
    again = views.random_diagonal_ssm(3, 4, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = views.random_diagonal_ssm(3, 4, seed=1)
    assert all(not torch.equal(a, b) for a, b in zip(first, other, strict=True))
