"""The book's figure style and the plot helpers that several chapters share."""

from __future__ import annotations

import pathlib
import re

import matplotlib.pyplot as plt
import numpy as np

from prunebook.book.phase import cell_means
from prunebook.seeds import numpy_rng
from prunebook.stats import wilson_interval

__all__ = ["use_book_style", "seed_dots", "success_curve", "PhaseAxes", "plot_phase", "save_figure_data",
           "smallest_font", "figure_png", "png_font_metadata", "FONT_KEY", "DPI_KEY", "MIN_FONT_PT",
           "FIGURE_DPI", "COLUMN_PX", "TEXT_WIDTH"]

#: PNG text chunks the book's inline figures carry (the browser test reads them): the smallest font
#: drawn, in points, and the figure's dpi
FONT_KEY, DPI_KEY = "prunebook:min-font-pt", "prunebook:dpi"
#: the smallest font a reader should meet, in points as displayed (DESIGN section 5)
MIN_FONT_PT = 9.0
#: the inline figures' dpi, and the width of the text column at a 1280-px window (the browser test
#: measures it): a figure at most TEXT_WIDTH inches wide is shown at its natural size, so its fonts
#: are displayed at the size they are drawn
FIGURE_DPI, COLUMN_PX = 110, 660
TEXT_WIDTH = 5.7  # inches: 627 px, leaving room for the tight bounding box IPython draws around it


def use_book_style() -> None:
    """Seaborn's paper style, a colour-blind palette, crisp inline figures.

    In IPython (a chapter's kernel) it also makes every inline PNG figure carry, as PNG text
    chunks, the smallest font size it draws (:data:`FONT_KEY`, points) and its dpi (:data:`DPI_KEY`),
    so that the browser test can check each figure's text as displayed: smallest font x displayed
    width / natural width >= :data:`MIN_FONT_PT`.
    """
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update(
        {
            "figure.dpi": FIGURE_DPI,
            "savefig.dpi": 150,
            "figure.figsize": (6.4, 3.8),
            "axes.titlesize": "medium",
            "figure.constrained_layout.use": True,
        }
    )
    _install_png_formatter()


def smallest_font(fig) -> float | None:
    """The smallest font size, in points, of the text ``fig`` draws (None if it draws no text).

    Measured by drawing the figure once with a renderer that records every non-empty string it
    draws (tick labels outside the view, invisible and empty texts are not drawn, so not counted).
    """
    from matplotlib.backends.backend_agg import RendererAgg

    class Recorder(RendererAgg):
        def __init__(self, width, height, dpi):
            super().__init__(width, height, dpi)
            self.sizes = []

        def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if str(s).strip():
                self.sizes.append(prop.get_size_in_points())
            return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

        def draw_tex(self, gc, x, y, s, prop, angle, *, mtext=None):
            if str(s).strip():
                self.sizes.append(prop.get_size_in_points())
            return super().draw_tex(gc, x, y, s, prop, angle, mtext=mtext)

    width, height = fig.get_size_inches() * fig.dpi
    renderer = Recorder(max(int(width), 1), max(int(height), 1), fig.dpi)
    fig.draw(renderer)
    return min(renderer.sizes) if renderer.sizes else None


def figure_png(fig, **kwargs) -> bytes:
    """``fig`` as the PNG an inline display shows (IPython's ``print_figure``: tight bounding box,
    the figure's dpi), with the smallest font and the dpi in its text chunks (None for a figure
    without axes or lines, which IPython does not show)."""
    from IPython.core.pylabtools import print_figure

    size = smallest_font(fig)
    metadata = {DPI_KEY: f"{fig.dpi:g}", **({FONT_KEY: f"{size:g}"} if size is not None else {})}
    return print_figure(fig, "png", metadata=metadata, **kwargs)


def png_font_metadata(data: bytes) -> dict:
    """The book's text chunks of a PNG: {"min_font_pt": float or None, "dpi": float or None}."""
    import io

    from PIL import Image

    text = Image.open(io.BytesIO(data)).text
    return {"min_font_pt": float(text[FONT_KEY]) if FONT_KEY in text else None,
            "dpi": float(text[DPI_KEY]) if DPI_KEY in text else None}


def _install_png_formatter() -> None:
    """Make IPython's PNG formatter for figures :func:`figure_png` (no-op outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book's extras
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    # resolve the backend first: the inline backend registers its own formatter when it loads
    plt.close(plt.figure())
    shell.display_formatter.formatters["image/png"].for_type(Figure, _png_base64)


def _png_base64(fig) -> str | None:
    import base64

    data = figure_png(fig)
    return None if data is None else base64.b64encode(data).decode("ascii")  # None: an empty figure


class PhaseAxes:
    """Maps grid values to the uniform cell coordinates of a :func:`plot_phase` heat map."""

    def __init__(self, xs, ys, log_y: bool):
        self.xs, self.ys, self.log_y = np.asarray(xs, float), np.asarray(ys, float), log_y

    def x(self, values):
        """Cell coordinates of x values (linear interpolation between grid values)."""
        return np.interp(values, self.xs, np.arange(len(self.xs)), left=np.nan, right=np.nan)

    def y(self, values):
        """Cell coordinates of y values (interpolation in log y when the grid is logarithmic)."""
        f = np.log if self.log_y else (lambda v: np.asarray(v, float))
        return np.interp(f(values), f(self.ys), np.arange(len(self.ys)), left=np.nan, right=np.nan)


def plot_phase(ax, df, x: str, y: str, value: str = "test_error", *, log_y: bool = False,
               vmin: float = 0.0, vmax: float = 0.5, cmap: str = "magma_r", fmt: str = "{:g}"):
    """Heat map of the mean of ``value`` per (x, y) grid cell, one equal-sized cell per grid value.

    Cells with a network that did not converge are marked with × and the fraction that did not.
    Returns (mesh, PhaseAxes); use the latter to overlay curves given in data units.
    """
    xs, ys, mean, bad, _ = cell_means(df, x, y, value)
    mesh = ax.pcolormesh(np.arange(len(xs) + 1) - 0.5, np.arange(len(ys) + 1) - 0.5, mean,
                         cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if bad[i, j] > 0:
                dark = mean[i, j] > vmin + 0.6 * (vmax - vmin)
                ax.text(j, i, f"×{bad[i, j]:.0%}", ha="center", va="center", fontsize=MIN_FONT_PT,
                        color="white" if dark else "black", fontweight="bold")
    ax.set_xticks(np.arange(len(xs)), [fmt.format(v) for v in xs])
    ax.set_yticks(np.arange(len(ys)), [fmt.format(v) for v in ys])
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    ax.grid(False)
    return mesh, PhaseAxes(xs, ys, log_y)


def seed_dots(ax, x, values, *, width: float = 0.0, seed: int = 0, color=None, label=None, size: float = 10, **kw):
    """Every seed as a dot: ``values`` [len(x), seeds] (NaN skipped), jittered by up to ``width`` in x.

    The book's outcomes are often bimodal (near 0 or near 1/2); showing each seed keeps that visible.
    The jitter is drawn from ``seed`` (same figure on every run).
    """
    x = np.asarray(x, dtype=float)
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[0] != len(x):
        raise ValueError(f"values: expected shape [len(x), seeds] = [{len(x)}, k], got {v.shape}")
    xs = np.repeat(x[:, None], v.shape[1], axis=1)
    if width:
        xs = xs + numpy_rng(seed).uniform(-width, width, size=xs.shape)
    ok = np.isfinite(v)
    return ax.scatter(xs[ok], v[ok], s=size, color=color, label=label, alpha=kw.pop("alpha", 0.6), lw=0, **kw)


def success_curve(ax, x, successes, trials, *, label=None, color=None, marker="o", **kw):
    """The success fraction successes/trials against x with its 95% Wilson band (always inside [0, 1])."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    lo, hi = wilson_interval(s, n)
    (line,) = ax.plot(x, s / n, marker=marker, ms=4, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    return line


#: where a chapter writes the data behind its figures (relative to the chapter's directory)
FIGURE_DATA = pathlib.Path("figure-data")


def save_figure_data(frame, name: str, *, folder: str | pathlib.Path = FIGURE_DATA) -> pathlib.Path:
    """Write the table behind a figure as ``<folder>/<name>.csv`` and return its path.

    Chapters link the file from the page with MyST's download role, e.g.
    ``{download}`data <figure-data/phase-pn.csv>```, so a reader can redo the figure.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"name: use letters, digits, '-', '_' and '.', got {name!r}")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.csv"
    frame.to_csv(out, index=False, float_format="%.6g")
    return out
