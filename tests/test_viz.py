"""The plot helpers recover known slopes, return their axes, and show real source."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sseq import viz  # noqa: E402
from sseq.exercises import check_function  # noqa: E402


@pytest.mark.parametrize("power", [0.0, 1.0, 2.0])
def test_loglog_slope_recovers_a_power_law(power):
    x = np.geomspace(10, 1e4, 8)
    fig, ax = plt.subplots()
    returned, slope = viz.loglog_slope(ax, x, 3.0 * x**power, label="y")
    assert returned is ax
    assert slope == pytest.approx(power, abs=1e-9)
    assert f"slope {power:.2f}" in ax.get_legend_handles_labels()[1][0]
    plt.close(fig)


def test_loglog_slope_fits_only_the_points_from_fit_from():
    """Protects: ``fit_from`` excludes the first points from the fit (and from the fitted line).

    The data are flat for 3 points, then grow as x²: the fit from point 3 on gives exactly 2,
    a fit over all points (``fit_from`` ignored) a much smaller slope.
    """
    x = np.geomspace(1, 1e3, 10)
    y = np.where(np.arange(10) < 3, x[2] ** 2, x**2)
    fig, ax = plt.subplots()
    _, slope = viz.loglog_slope(ax, x, y, label="y", fit_from=3)
    _, slope_all = viz.loglog_slope(ax, x, y, label="all")
    assert slope == pytest.approx(2.0, abs=1e-9)
    assert slope_all < 1.9
    fitted = ax.lines[1].get_xdata()
    assert fitted.min() == pytest.approx(x[3]) and fitted.max() == pytest.approx(x[-1])
    with pytest.raises(ValueError, match="at least 2 fitted points"):
        viz.loglog_slope(ax, x, y, label="y", fit_from=9)
    plt.close(fig)


def test_loglog_slope_rejects_bad_input():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"equal length, got shapes \(3,\) and \(2,\)"):
        viz.loglog_slope(ax, [1, 2, 3], [1, 2], label="y")
    with pytest.raises(ValueError, match="positive"):
        viz.loglog_slope(ax, [1, 2, 3], [1, 0, 3], label="y")
    plt.close(fig)


def test_plot_history_draws_the_curve_and_names_missing_keys():
    fig, ax = plt.subplots()
    assert viz.plot_history(ax, {"step": [0, 1], "loss": [2.0, 1.0]}) is ax
    assert list(ax.lines[0].get_ydata()) == [2.0, 1.0]
    with pytest.raises(KeyError, match="history has no 'acc'"):
        viz.plot_history(ax, {"loss": [1.0]}, key="acc")
    plt.close(fig)


def test_show_source_is_the_real_source_as_text_and_html():
    shown = viz.show_source(check_function)
    assert repr(shown).startswith("def check_function(")
    assert shown.name == "sseq.exercises.check_function"
    assert "sseq-source" in shown._repr_html_()


def test_show_source_of_a_method_is_dedented():
    assert repr(viz.show_source(viz.SourceCode.__repr__)).startswith("def __repr__")


def test_show_source_rejects_builtins():
    with pytest.raises(TypeError, match="show_source needs a function"):
        viz.show_source(len)


def test_use_style_sets_the_house_style():
    viz.use_style()
    assert matplotlib.rcParams["axes.spines.top"] is False
