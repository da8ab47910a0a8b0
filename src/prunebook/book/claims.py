"""Claims that cannot drift from the runs: numbers glued into the prose, findings asserted.

Every number a chapter states in its prose comes from its own run through :func:`glue` (MyST-NB's
glue, shown in the rendered book with ``{glue:text}`name:.3f```), and every sentence that states a
finding has a :func:`claim` behind it, so that a rebuilt book fails instead of showing a claim its
own runs contradict. In smoke mode (tiny sizes) claims are reported, not enforced.
"""

from __future__ import annotations

__all__ = ["ClaimFailed", "glue", "claim"]


class ClaimFailed(AssertionError):
    """A finding stated in a chapter's prose does not hold in the chapter's own run."""


def glue(name: str, value, *, display: bool = False) -> None:
    """Make ``value`` available to the chapter's prose as ``{glue:text}`name```.

    Uses MyST-NB when it is installed (the book build); elsewhere (Colab, a plain Jupyter) it does
    nothing, and the Colab edition shows the values of the book's own run. A NumPy scalar is glued
    as the Python number it holds (its repr, ``np.float64(...)``, would not format as a number).
    """
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name: letters, digits, '_' and '-' only, got {name!r}")
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - depends on the environment
        return  # returns nothing either way: a cell ending in a glue shows no stray value
    _glue(name, value, display=display)


def claim(condition: bool, statement: str, *, enforce: bool = True) -> None:
    """Check a finding the prose states; raise :class:`ClaimFailed` naming it if the run contradicts it.

    ``enforce=False`` (pass ``not smoke``) only prints the verdict, for runs too small to decide.
    Returns nothing, so that a cell ending in a claim shows the printed verdict and no stray value.
    """
    holds = bool(condition)
    if not holds and enforce:
        raise ClaimFailed(f"the chapter states: {statement!r}, but its run contradicts it")
    print(f"claim {'holds' if holds else 'NOT checked at smoke sizes' if not enforce else 'fails'}: {statement}")
