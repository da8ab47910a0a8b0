"""plots.use_book_style: every inline figure carries its smallest font and dpi (for the browser test)."""

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from prunebook.book import plots  # noqa: E402


@pytest.fixture
def fig():
    f, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.plot([0, 1], [0, 1], label="line")
    ax.tick_params(labelsize=11)
    ax.set_xlabel("x", fontsize=12)
    yield f, ax
    plt.close(f)


def test_smallest_font_is_the_smallest_text_drawn(fig):
    f, ax = fig
    assert plots.smallest_font(f) == 11
    ax.legend(fontsize=8)
    assert plots.smallest_font(f) == 8
    ax.text(0.5, 0.5, "tiny", fontsize=6.5)
    assert plots.smallest_font(f) == 6.5
    f.colorbar(ax.scatter([0], [0], c=[0]), ax=ax).ax.tick_params(labelsize=5)
    assert plots.smallest_font(f) == 5, "colour-bar labels count"


def test_text_that_is_not_drawn_does_not_count(fig):
    f, ax = fig
    ax.text(0.5, 0.5, "hidden", fontsize=3).set_visible(False)
    ax.text(0.5, 0.5, "   ", fontsize=3)
    ax.set_title("", fontsize=2)
    assert plots.smallest_font(f) == 11
    assert plots.smallest_font(plt.figure()) is None
    plt.close("all")


def test_the_png_carries_font_and_dpi(fig):
    f, ax = fig
    ax.text(0.5, 0.5, "note", fontsize=7.5)
    meta = plots.png_font_metadata(plots.figure_png(f))
    assert meta == {"min_font_pt": 7.5, "dpi": 100.0}
    plain = plots.png_font_metadata(_plain_png(f))
    assert plain == {"min_font_pt": None, "dpi": None}, "control: a plain savefig has no such chunks"


def _plain_png(f):
    import io

    buf = io.BytesIO()
    f.savefig(buf, format="png")
    return buf.getvalue()


def test_use_book_style_makes_ipython_show_figures_with_their_fonts(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        plots.use_book_style()
        f, ax = plt.subplots()
        ax.plot([0, 1])
        ax.set_title("t", fontsize=9.5)
        ax.tick_params(labelsize=10)
        data, _ = shell.display_formatter.format(f)
        meta = plots.png_font_metadata(base64.b64decode(data["image/png"]))
        assert meta["min_font_pt"] == 9.5 and meta["dpi"] == plt.rcParams["figure.dpi"]
        plt.close(f)
        empty = plt.figure()
        assert "image/png" not in shell.display_formatter.format(empty)[0], "an empty figure shows nothing"
        plt.close(empty)
    finally:
        InteractiveShell.clear_instance()
        matplotlib.rcdefaults()
