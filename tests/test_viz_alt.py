"""sseq.viz describes each figure in words and stores the text with its PNG (alt text)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sseq import viz  # noqa: E402


def test_a_figure_is_described_by_its_titles_and_axes():
    fig, (left, right, bar) = plt.subplots(1, 3)
    fig.suptitle("Recall against distance")
    left.set(title="diagonal state", xlabel="distance k (steps)", ylabel="accuracy")
    right.set(xlabel="n")
    bar.set_visible(False)
    assert viz.figure_alt_text(fig) == ("Recall against distance. diagonal state (x: distance k "
                                        "(steps); y: accuracy). x: n.")
    plt.close(fig)


def test_a_figure_without_text_is_still_a_figure():
    fig, ax = plt.subplots()
    ax.set_title("")
    assert viz.figure_alt_text(fig) == "Figure"
    plt.close(fig)


def test_inline_figures_carry_their_alt_text_as_output_metadata():
    pytest.importorskip("matplotlib_inline")
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    shell = InteractiveShell.instance()
    try:
        set_matplotlib_formats("png")
        viz._describe_png_figures(shell)
        fig, ax = plt.subplots()
        ax.set(title="Loss", xlabel="step")
        data, metadata = shell.display_formatter.format(fig)
        assert data["image/png"]  # still the PNG
        assert metadata["image/png"] == {"alt": "Loss (x: step)."}
        plt.close(fig)
    finally:
        InteractiveShell.clear_instance()
