"""Diagrams drawn by code: the unrolled RNN, the LSTM and GRU cells, the SSM block diagram.

Books draw these models as boxes and arrows; this module draws them with matplotlib, so the
notebooks show them without image files, in the book's palette, and the HTML book gets
their titles as alt text like every other figure. Each function takes an ``ax``, draws on
it (axes hidden, equal aspect) and returns it.

Conventions: data flows left to right and bottom to top; a rounded box is a layer with
weights (σ, tanh, a matrix), a circle is an elementwise operation (⊙, +, 1 −).
"""

from __future__ import annotations

from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from sseq.viz import PALETTE

__all__ = ["gru_cell", "lstm_cell", "ssm_block", "unrolled_rnn"]

_FONT = 11


def _canvas(ax, xlim, ylim, title):
    ax.set(xlim=xlim, ylim=ylim, aspect="equal", title=title)
    ax.axis("off")
    return ax


def _box(ax, x, y, text, *, w=1.0, h=0.6, color=PALETTE["state"]):
    """A layer: a rounded box centred at (x, y)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                facecolor=color, edgecolor="black", alpha=0.25, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=_FONT)


def _op(ax, x, y, text, r=0.22):
    """An elementwise operation: a circle centred at (x, y)."""
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor="black", lw=1.2, zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=_FONT, zorder=4)


def _arrow(ax, start, end, *, color="black", style="-|>", rad=0.0, lw=1.3):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, lw=lw,
                                 color=color, shrinkA=0, shrinkB=0,
                                 connectionstyle=f"arc3,rad={rad}"))


def _path(ax, points, *, color="black", lw=1.3):
    """A polyline through ``points``, with an arrowhead on its last segment."""
    for a, b in zip(points[:-2], points[1:-1], strict=True):
        ax.plot([a[0], b[0]], [a[1], b[1]], color=color, lw=lw, solid_capstyle="round")
    _arrow(ax, points[-2], points[-1], color=color, lw=lw)


def _label(ax, x, y, text, **kw):
    ax.text(x, y, text, ha="center", va="center", **{"fontsize": _FONT, **kw})


def unrolled_rnn(ax, steps: int = 3):
    """The RNN folded (a cell with a loop) and unrolled over ``steps`` steps, weights shared.

    Returns:
        ``ax``.
    """
    _canvas(ax, (-0.8, 4.2 + 2.2 * steps), (-1.5, 2.4), "The RNN, folded and unrolled in time")
    # folded: one cell, its state fed back
    _box(ax, 0.5, 0.5, "RNN")
    _label(ax, 0.5, -1.0, "$x_t$")
    _arrow(ax, (0.5, -0.75), (0.5, 0.15))
    _arrow(ax, (0.5, 0.85), (0.5, 1.75))
    _label(ax, 0.5, 2.0, "$h_t$")
    _path(ax, [(1.05, 0.5), (1.5, 0.5), (1.5, 1.3), (-0.5, 1.3), (-0.5, 0.5), (-0.05, 0.5)])
    _label(ax, 1.75, 1.05, "$W$", color=PALETTE["state"])
    _label(ax, 2.6, 0.5, "=", fontsize=18)
    # unrolled: one copy per step, the same W and U everywhere
    x0 = 3.6
    _label(ax, x0, 0.5, "$h_0$")
    for i in range(steps):
        cx = x0 + 1.2 + 2.2 * i
        _arrow(ax, (cx - 1.0, 0.5), (cx - 0.55, 0.5))
        _box(ax, cx, 0.5, "RNN")
        _label(ax, cx - 0.78, 0.78, "$W$", color=PALETTE["state"], fontsize=9)
        _label(ax, cx + 0.2, -0.35, "$U$", color=PALETTE["state"], fontsize=9)
        _label(ax, cx, -1.0, f"$x_{i + 1}$")
        _arrow(ax, (cx, -0.75), (cx, 0.15))
        _arrow(ax, (cx, 0.85), (cx, 1.75))
        _label(ax, cx, 2.0, f"$h_{i + 1}$")
    end = x0 + 1.2 + 2.2 * (steps - 1)
    _arrow(ax, (end + 0.55, 0.5), (end + 1.2, 0.5))
    _label(ax, end + 1.5, 0.5, r"$\cdots$")
    return ax


def _cell_frame(ax, title, xlim=(-1.6, 8.6), ylim=(-1.9, 4.3)):
    _canvas(ax, xlim, ylim, title)
    ax.add_patch(FancyBboxPatch((0, -0.6), 7, 4.0, boxstyle="round,pad=0.1",
                                facecolor="none", edgecolor=PALETTE["theory"], lw=1.5))


def lstm_cell(ax):
    """The LSTM cell: the cell line c on top (⊙ forget, + write), four gates below.

    Returns:
        ``ax``.
    """
    _cell_frame(ax, "The LSTM cell")
    top = 2.8
    _label(ax, -0.9, top, "$c_{t-1}$")
    _label(ax, -0.9, 0.0, "$h_{t-1}$")
    _label(ax, 1.0, -1.5, "$x_t$")
    _arrow(ax, (-0.45, top), (1.28, top))
    _op(ax, 1.5, top, r"$\odot$")
    _arrow(ax, (1.72, top), (3.78, top))
    _op(ax, 4.0, top, "+")
    _arrow(ax, (4.22, top), (7.9, top))
    _label(ax, 8.3, top, "$c_t$")
    # [h_{t-1}, x_t] feeds the four gates
    _path(ax, [(-0.45, 0.0), (1.0, 0.0), (1.0, -0.4), (5.5, -0.4)], color="0.4")
    _arrow(ax, (1.0, -1.25), (1.0, -0.4), color="0.4")
    gates = ((1.5, r"$\sigma$", "$f_t$"), (2.7, r"$\sigma$", "$i_t$"),
             (3.9, r"$\tanh$", r"$g_t$"), (5.3, r"$\sigma$", "$o_t$"))
    for x, text, _ in gates:
        _arrow(ax, (x, -0.4), (x, 0.3), color="0.4")
        _box(ax, x, 0.6, text, w=0.9, h=0.55)
    for (x, y), name in zip(((1.75, 1.5), (2.55, 1.35), (4.05, 1.35), (5.65, 1.0)),
                            (name for *_, name in gates), strict=True):
        _label(ax, x, y, name, fontsize=9)
    _arrow(ax, (1.5, 0.9), (1.5, top - 0.22))  # f multiplies the old cell
    _op(ax, 3.3, 1.8, r"$\odot$")  # i ⊙ g
    _arrow(ax, (2.7, 0.9), (3.1, 1.65))
    _arrow(ax, (3.9, 0.9), (3.5, 1.65))
    _arrow(ax, (3.4, 2.0), (3.85, top - 0.17))
    # h_t = o ⊙ tanh(c_t)
    _path(ax, [(6.2, top), (6.2, 2.2), (6.2, 2.0)])
    _box(ax, 6.2, 1.7, r"$\tanh$", w=0.9, h=0.5, color=PALETTE["accent"])
    _op(ax, 6.2, 0.6, r"$\odot$")
    _arrow(ax, (6.2, 1.43), (6.2, 0.82))
    _arrow(ax, (5.75, 0.6), (5.98, 0.6))
    _path(ax, [(6.42, 0.6), (7.9, 0.6)])
    _label(ax, 8.3, 0.6, "$h_t$")
    return ax


def gru_cell(ax):
    """The GRU cell in PyTorch's form: h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t-1}, reset after W_hn.

    Returns:
        ``ax``.
    """
    _cell_frame(ax, "The GRU cell")
    top = 2.8
    _label(ax, -0.9, top, "$h_{t-1}$")
    _label(ax, 1.8, -1.5, "$x_t$")
    _arrow(ax, (-0.4, top), (1.08, top))
    _op(ax, 1.3, top, r"$\odot$")  # z ⊙ h_{t-1}
    _arrow(ax, (1.52, top), (6.38, top))
    _op(ax, 6.6, top, "+")
    _arrow(ax, (6.82, top), (7.9, top))
    _label(ax, 8.3, top, "$h_t$")
    # h_{t-1} and x_t feed the two gates and W_hn
    _path(ax, [(0.4, top), (0.4, -0.4), (3.5, -0.4)], color="0.4")
    _arrow(ax, (1.8, -1.25), (1.8, -0.4), color="0.4")
    for x, text, color in ((1.3, r"$\sigma$", PALETTE["state"]),
                           (2.3, r"$\sigma$", PALETTE["state"]),
                           (3.3, "$W_{hn}$", PALETTE["accent"])):
        _arrow(ax, (x, -0.4), (x, 0.3), color="0.4")
        _box(ax, x, 0.6, text, w=0.8, h=0.55, color=color)
    _arrow(ax, (1.3, 0.9), (1.3, top - 0.22))  # the update gate z keeps the old state
    _label(ax, 1.05, 1.55, "$z_t$", fontsize=9)
    _path(ax, [(2.3, 0.9), (2.3, 1.3), (3.08, 1.3)])  # the reset gate r
    _label(ax, 2.05, 1.1, "$r_t$", fontsize=9)
    _op(ax, 3.3, 1.3, r"$\odot$")
    _arrow(ax, (3.3, 0.9), (3.3, 1.08))
    _box(ax, 4.5, 1.3, r"$\tanh$", w=0.9, h=0.55)
    _arrow(ax, (3.52, 1.3), (4.02, 1.3))
    _label(ax, 4.5, 0.7, "$+\\,W_{in} x_t$", fontsize=9)
    _op(ax, 6.6, 1.3, r"$\odot$")  # (1 − z) ⊙ h̃
    _arrow(ax, (4.98, 1.3), (6.38, 1.3))
    _label(ax, 5.6, 1.05, r"$\tilde h_t$", fontsize=10)
    _arrow(ax, (6.6, 1.52), (6.6, top - 0.22))
    _path(ax, [(1.3, 2.1), (5.64, 2.1)])  # 1 − z
    _op(ax, 5.9, 2.1, "1−", r=0.26)
    _arrow(ax, (6.08, 1.92), (6.44, 1.46))
    return ax


def ssm_block(ax, *, discrete: bool = False):
    """The state space model as a block diagram: x' = Ax + Bu, y = Cx + Du.

    Args:
        discrete: draw the recurrence x_k = Ā x_{k-1} + B̄ u_k (a one-step delay) instead of
            the integrator of the continuous system.

    Returns:
        ``ax``.
    """
    title = ("A discrete state space model" if discrete else "A state space model") + \
        " as a block diagram"
    _canvas(ax, (-0.6, 10.6), (-1.2, 3.1), title)
    u, x, y = ("$u_k$", "$x_k$", "$y_k$") if discrete else ("$u(t)$", "$x(t)$", "$y(t)$")
    A, B = (r"$\bar A$", r"$\bar B$") if discrete else ("$A$", "$B$")
    _label(ax, 0.0, 1.0, u)
    _arrow(ax, (0.45, 1.0), (1.35, 1.0))
    _box(ax, 1.8, 1.0, B, w=0.8)
    _arrow(ax, (2.25, 1.0), (2.98, 1.0))
    _op(ax, 3.2, 1.0, "+")
    _arrow(ax, (3.42, 1.0), (4.05, 1.0))
    _box(ax, 4.6, 1.0, r"$z^{-1}$" if discrete else r"$\int dt$", w=1.0,
         color=PALETTE["accent"])
    _arrow(ax, (5.15, 1.0), (6.55, 1.0))
    _label(ax, 5.85, 1.35, x)
    _box(ax, 7.0, 1.0, "$C$", w=0.8)
    _arrow(ax, (7.45, 1.0), (8.28, 1.0))
    _op(ax, 8.5, 1.0, "+")
    _arrow(ax, (8.72, 1.0), (9.6, 1.0))
    _label(ax, 10.0, 1.0, y)
    # feedback: the state acts on itself through A
    _path(ax, [(6.0, 1.0), (6.0, 2.3), (5.05, 2.3)])
    _box(ax, 4.6, 2.3, A, w=0.8)
    _path(ax, [(4.15, 2.3), (3.2, 2.3), (3.2, 1.22)])
    # skip: D u straight to the output
    _path(ax, [(0.9, 1.0), (0.9, -0.5), (4.15, -0.5)])
    _box(ax, 4.6, -0.5, "$D$", w=0.8)
    _path(ax, [(5.05, -0.5), (8.5, -0.5), (8.5, 0.78)])
    return ax
