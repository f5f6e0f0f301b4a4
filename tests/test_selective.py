"""sseq.selective: the Euler rule is the package's scan; the ZOH rule is Chapter 4's ZOH."""

from __future__ import annotations

import pytest
import torch

from sseq import discretize, scan, selective
from sseq.mamba import Mamba


def inputs(b=2, l=9, d=3, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return dict(u=r(b, l, d), delta=r(b, l, d), A=-torch.rand(d, n, generator=g,
                                                                dtype=torch.float64) * 3,
                B=r(b, l, n), C=r(b, l, n), D=r(d), z=r(b, l, d), delta_bias=r(d),
                delta_softplus=True)


def test_the_euler_rule_is_mambas_scan():
    args = inputs()
    torch.testing.assert_close(selective.selective_scan_rule(**args, rule="euler"),
                               scan.selective_scan_ref(**args), rtol=1e-10, atol=1e-12)


def test_the_zoh_rule_is_chapter_4s_zero_order_hold():
    args = inputs()
    dt = torch.nn.functional.softplus(args["delta"] + args["delta_bias"])  # (b, l, d)
    b, l, d = dt.shape
    h = torch.zeros(b, d, args["A"].shape[1], dtype=torch.float64)
    ys = []
    for t in range(l):  # each channel's diagonal SSM, discretized by sseq.discretize.zoh
        A_bar, B_bar = discretize.zoh(args["A"], args["B"][:, t, None, :],
                                      dt[:, t, :, None], diagonal=True)
        h = A_bar * h + B_bar * args["u"][:, t, :, None]
        ys.append((h * args["C"][:, t, None, :]).sum(-1))
    y = (torch.stack(ys, 1) + args["D"] * args["u"]) * torch.nn.functional.silu(args["z"])
    torch.testing.assert_close(selective.selective_scan_rule(**args, rule="zoh"), y,
                               rtol=1e-10, atol=1e-12)


def test_b_factor_is_the_ratio_of_the_rules():
    x = torch.tensor([0.0, -1e-9, -0.1, -1.0, -20.0], dtype=torch.float64)
    want = torch.tensor([1.0, 1.0, (1 - torch.e**-0.1) / 0.1, 1 - torch.e**-1,
                         (1 - torch.e**-20) / 20], dtype=torch.float64)
    torch.testing.assert_close(selective.b_factor(x), want, rtol=1e-9, atol=0)


def test_the_difference_grows_with_the_step():
    torch.manual_seed(0)
    u = torch.randn(2, 64, 16)
    small, large = (selective.compare_rules(Mamba(16, dt_min=lo, dt_max=hi), u)
                    for lo, hi in ((1e-3, 1e-2), (0.5, 1.0)))
    assert 0 < small < 0.05 < 0.2 < large


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule must be one of"):
        selective.discretize(torch.ones(1, 1, 1), torch.ones(1, 1), torch.ones(1, 1, 1), "rk4")
