"""One plot style for the whole book, small plotting helpers, and ``show_source``.

Every helper takes an ``ax`` and returns it, so a chapter composes figures with
``fig, axes = plt.subplots(...)`` and one helper call per panel. ``use_style()``
is called once by each chapter's setup cell.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np

__all__ = [
    "PALETTE",
    "SourceCode",
    "figure_alt_text",
    "loglog_slope",
    "plot_history",
    "show_source",
    "use_style",
]

# Colour-blind-safe palette (Okabe & Ito), one colour per model family across the book.
PALETTE = {
    "state": "#0072B2",      # running state: RNN, LSTM, SSM, Mamba
    "attention": "#D55E00",  # keep everything: attention
    "reference": "#000000",
    "theory": "#7f7f7f",
    "accent": "#009E73",
    "extra": "#CC79A7",
    "extra2": "#E69F00",
    "extra3": "#56B4E9",
}

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE.values())),
}


def use_style() -> None:
    """Apply the book's matplotlib style; render inline figures as PNG with their alt text."""
    mpl.rcParams.update(STYLE)
    try:  # inside IPython: PNG figures (nbval would compare SVG as text)
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("png")
            _describe_png_figures(ip)
    except ImportError:  # plain Python: nothing to configure
        pass


def _describe_png_figures(ip) -> None:
    """Store each inline figure's alt text with its PNG (output metadata ``image/png.alt``).

    The HTML book gives the text to the figure's ``<img alt>``, so a reader who cannot see
    the plot hears its titles and axes instead of a file name.
    """
    from matplotlib.figure import Figure

    formatter = ip.display_formatter.formatters["image/png"]
    try:
        print_png = formatter.lookup_by_type(Figure)  # what set_matplotlib_formats registered
    except KeyError:  # PNG figures are off in this front end: nothing to describe
        return
    formatter.for_type(Figure, lambda fig: (print_png(fig), {"alt": figure_alt_text(fig)}))


def _axes_text(ax) -> str:
    title = ax.get_title() or ax.get_title("left") or ax.get_title("right")
    labels = [f"{axis}: {label}" for axis, label in
              (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if label]
    if labels:
        return f"{title} ({'; '.join(labels)})" if title else "; ".join(labels)
    return title


def figure_alt_text(fig) -> str:
    """A figure described in words, for the HTML ``alt`` text: its titles and axis labels.

    ``"<suptitle>. <panel title> (x: <label>; y: <label>). ..."``, panels left to right and top
    to bottom; panels with neither title nor labels (colour bars, images) are left out.

    Args:
        fig: a matplotlib Figure.

    Returns:
        The description, or ``"Figure"`` for a figure with no text at all.
    """
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    panels = [text for ax in fig.get_axes() if ax.get_visible() and (text := _axes_text(ax))]
    parts = [part.strip().rstrip(".") for part in (suptitle, *panels) if part.strip()]
    return ". ".join(parts) + "." if parts else "Figure"


def loglog_slope(ax, x: Sequence[float], y: Sequence[float], *, label: str, color=None,
                 marker: str = "o", fit_from: int = 0):
    """Plot ``y`` against ``x`` on log–log axes with the fitted power law.

    The slope p of ``log y = p log x + c`` (fitted on points ``fit_from:``) is the
    exponent of the growth: p ≈ 0 constant, p ≈ 1 linear, p ≈ 2 quadratic.

    Args:
        ax: a matplotlib Axes.
        x, y: positive values of equal length (at least 2 after ``fit_from``).
        label: legend label; the slope is appended.

    Returns:
        ``(ax, slope)``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    if len(x) - fit_from < 2 or (x <= 0).any() or (y <= 0).any():
        raise ValueError("loglog_slope needs at least 2 fitted points and positive x and y")
    slope, intercept = np.polyfit(np.log(x[fit_from:]), np.log(y[fit_from:]), 1)
    line = ax.loglog(x, y, marker=marker, linestyle="", color=color)[0]
    xs = np.geomspace(x[fit_from:].min(), x[fit_from:].max(), 50)  # the fitted range only
    ax.loglog(xs, np.exp(intercept) * xs**slope, color=line.get_color(), alpha=0.7,
              label=f"{label} (slope {round(slope, 2) + 0.0:.2f})")  # + 0.0: no "-0.00"
    return ax, float(slope)


def plot_history(ax, history: dict, *, key: str = "loss", label: str | None = None,
                 color=None, logy: bool = False):
    """Plot one curve of a training history (``{'step': [...], key: [...]}``)."""
    if key not in history:
        raise KeyError(f"history has no {key!r}; it has {sorted(history)}")
    x = history.get("step", range(len(history[key])))
    ax.plot(x, history[key], label=label, color=color)
    ax.set_xlabel("training step")
    ax.set_ylabel(key)
    if logy:
        ax.set_yscale("log")
    return ax


class SourceCode:
    """Source text that renders highlighted in HTML and as plain text elsewhere."""

    def __init__(self, text: str, name: str):
        self.text, self.name = text, name

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        formatter = HtmlFormatter(noclasses=True, style="friendly", nobackground=True)
        body = highlight(self.text, PythonLexer(), formatter)
        return (f'<div class="sseq-source"><div class="sseq-source-title">{self.name}</div>'
                f"{body}</div>")


def show_source(obj) -> SourceCode:
    """Display the real source of an ``sseq`` function, class or module.

    The book never copies package code into a notebook: it shows it from the
    package, so the text and the code cannot drift apart.
    """
    try:
        text = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"show_source needs a function, class or module defined in Python, "
                        f"got {type(obj).__name__}: {err}") from err
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    name = f"{module}.{getattr(obj, '__qualname__', '')}".rstrip(".")
    return SourceCode(textwrap.dedent(text).rstrip(), name)
