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
