"""sseq.selective: the Euler rule is the package's scan; the ZOH rule is Chapter 4's ZOH."""

from __future__ import annotations

import math

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


def test_without_options_the_rules_are_the_plain_scan():
    """No bias, no softplus, no D, no gate: the Euler rule is selective_scan_ref's plain scan
    with Δ as given, and the ZOH rule scales each step's B by (e^{ΔA} − 1)/(ΔA)."""
    args = inputs()
    plain = {k: args[k] for k in ("u", "delta", "A", "B", "C")}
    plain["delta"] = plain["delta"].abs() + 0.1  # a positive step, used as given
    torch.testing.assert_close(selective.selective_scan_rule(**plain),
                               scan.selective_scan_ref(**plain), rtol=1e-10, atol=1e-12)
    u, dt, A, B, C = plain.values()
    h = torch.zeros(2, 3, 4, dtype=torch.float64)
    ys = []
    for t in range(9):  # float64 loop: h = e^{ΔA} h + (e^{ΔA} − 1)/A · B u
        dA = dt[:, t, :, None] * A
        h = torch.exp(dA) * h + torch.expm1(dA) / A * B[:, t, None, :] * u[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1))
    torch.testing.assert_close(selective.selective_scan_rule(**plain, rule="zoh"),
                               torch.stack(ys, 1), rtol=1e-10, atol=1e-12)


def test_discretize_returns_both_rules_per_step():
    """A_bar = e^{ΔA} for both rules; B_bar = ΔB (Euler) or (e^{ΔA} − 1)/A · B (ZOH),
    each (b, l, d, n), element by element; Euler is the default."""
    g = torch.Generator().manual_seed(3)
    dt = torch.rand(2, 5, 3, generator=g, dtype=torch.float64) + 0.05
    A = -torch.rand(3, 4, generator=g, dtype=torch.float64) * 2 - 0.1
    B = torch.randn(2, 5, 4, generator=g, dtype=torch.float64)
    A_bar, euler = selective.discretize(dt, A, B)
    _, zoh = selective.discretize(dt, A, B, "zoh")
    assert A_bar.shape == euler.shape == zoh.shape == (2, 5, 3, 4)
    for i, t, c, k in [(0, 0, 0, 0), (1, 4, 2, 3), (0, 2, 1, 2)]:
        step, a, b = dt[i, t, c].item(), A[c, k].item(), B[i, t, k].item()
        assert A_bar[i, t, c, k].item() == pytest.approx(math.exp(step * a), rel=1e-12)
        assert euler[i, t, c, k].item() == pytest.approx(step * b, rel=1e-12)
        assert zoh[i, t, c, k].item() == pytest.approx(math.expm1(step * a) / a * b, rel=1e-12)


def test_b_factor_takes_python_numbers():
    """b_factor accepts a plain float (as its docstring's x = ΔA): (e^x − 1)/x, and 1 at 0."""
    assert selective.b_factor(-0.5).item() == pytest.approx(-math.expm1(-0.5) / 0.5, rel=1e-6)
    assert selective.b_factor(0.0).item() == 1.0


def test_compare_rules_is_the_relative_change_of_the_state_readout():
    """compare_rules(block, u) = ‖y_zoh − y_euler‖ / ‖y_euler‖ with y_t = ⟨C_t, h_t⟩ (no D,
    no gate), every input computed from the block's own weights: a float64 loop from its
    state dict."""
    torch.manual_seed(4)
    block = Mamba(4, d_state=3, d_conv=3, expand=1, dt_min=0.2, dt_max=0.8).double()
    with torch.no_grad():
        block.conv1d.bias.normal_()
    u = torch.randn(2, 7, 4, dtype=torch.float64)
    sd = {k: v.detach() for k, v in block.state_dict().items()}
    x, _ = (u @ sd["in_proj.weight"].T).chunk(2, dim=-1)
    w = sd["conv1d.weight"][:, 0]  # (d, 3): tap k of the window sees x_{t−2+k}
    conv = torch.zeros_like(x)
    for t in range(7):
        for k in range(3):
            if t - 2 + k >= 0:
                conv[:, t] += w[:, k] * x[:, t - 2 + k]
    x = torch.nn.functional.silu(conv + sd["conv1d.bias"])
    proj = x @ sd["x_proj.weight"].T  # (b, l, 1 + 3 + 3)
    dt = torch.nn.functional.softplus(proj[..., :1] @ sd["dt_proj.weight"].T
                                      + sd["dt_proj.bias"])
    B, C, A = proj[..., 1:4], proj[..., 4:], -torch.exp(sd["A_log"])
    ys = {}
    for rule in ("euler", "zoh"):
        h, out = torch.zeros(2, 4, 3, dtype=torch.float64), []
        for t in range(7):
            dA = dt[:, t, :, None] * A
            b_bar = dt[:, t, :, None] if rule == "euler" else torch.expm1(dA) / A
            h = torch.exp(dA) * h + b_bar * B[:, t, None, :] * x[:, t, :, None]
            out.append((h * C[:, t, None, :]).sum(-1))
        ys[rule] = torch.stack(out, 1)
    want = ((ys["zoh"] - ys["euler"]).norm() / ys["euler"].norm()).item()
    assert 0.05 < want < 1
    assert selective.compare_rules(block, u) == pytest.approx(want, rel=1e-9)


def test_unknown_rule_is_named_in_the_message():
    """The refusal lists the rules and shows what was given."""
    with pytest.raises(ValueError, match=r"^rule must be one of \('euler', 'zoh'\), got 'rk4'$"):
        selective.selective_scan_rule(**inputs(), rule="rk4")


def test_b_factor_has_finite_gradients_at_zero():
    """b_factor's gradient is finite where ΔA = 0 (the 0/0 branch is never differentiated)
    and is d/dx (e^x − 1)/x = (x e^x − e^x + 1)/x² elsewhere."""
    x = torch.tensor([0.0, -0.5, -2.0], dtype=torch.float64, requires_grad=True)
    selective.b_factor(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    for i, v in ((1, -0.5), (2, -2.0)):
        want = (v * math.exp(v) - math.exp(v) + 1) / v**2
        assert x.grad[i].item() == pytest.approx(want, rel=1e-12)
