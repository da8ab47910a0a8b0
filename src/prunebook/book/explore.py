"""The interactive phase diagram (the page after chapter 4, ``chapters/04b_explore_phase``).

A kernel-free figure: the precomputed (p, n) phase table (one row per trained network) drawn as
a Vega-Lite specification with its data inlined, so that the browser does the work and no Python
kernel is needed. Sliders cover what the table covers:

- **seeds**: the success fraction of each cell over the first k seeds of the table (k = 1 to all);
- **the race constant C** of the book's heuristic race boundary n SNR_p^q = C (log scale), the
  boundary redrawn live; it starts at the value fitted on the table (networks with a usable neuron);
- **the over-pruning level**: the pruning fraction at which a network has no usable neuron with
  that probability, ((1 + p)/2)^(2m) = level, redrawn live;
- **the signal norm**, only when the table has several values of ``mu_norm`` (a (p, n, ||mu||)
  table from ``make tables``).

The figure is rendered by Vega, Vega-Lite and vega-embed: in the book from the copies served with it
(``_vendor/vega/`` in the repository, ``vega/`` in the site; no CDN: the book stays offline); elsewhere (Colab, Jupyter) the same cell output
falls back to a CDN. Every function here is tested in ``tests/book/test_explore.py``; the browser
test moves a slider on the built page and sees the figure change.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from prunebook.conventions import SUCCESS_ERROR
from prunebook.stats import logistic_fit
from prunebook.theory import n_snr_q, snr_p

__all__ = [
    "PHASE_TABLE", "VEGA_LITE_MIME", "LOCAL_SCRIPTS", "CDN_SCRIPTS", "explorer_data", "race_constant",
    "boundary_curve", "phase_explorer_spec", "PhaseExplorer", "phase_explorer",
]

#: the precomputed table the page reads (one name, so the table can be switched in one place)
PHASE_TABLE = "phase_pn_flow"
#: the Vega-Lite major version of the book's copies (``_vendor/vega``: Vega 6, Vega-Lite 6, vega-embed 7)
VEGA_LITE_MIME = "application/vnd.vegalite.v6+json"
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # names the version; never fetched
#: the book's copies, relative to a chapter page (chapters/*.html): ``_vendor/vega/`` is copied to the
#: site's ``vega/`` (Sphinx's html_extra_path; Jupyter Book would add any *.js in _static to every page)
LOCAL_SCRIPTS = ("../vega/vega.min.js", "../vega/vega-lite.min.js", "../vega/vega-embed.min.js")
#: where the cell output loads Vega from outside the book (Colab, Jupyter), only if the local copies fail
CDN_SCRIPTS = ("https://cdn.jsdelivr.net/npm/vega@6.4.0", "https://cdn.jsdelivr.net/npm/vega-lite@6.5.0",
               "https://cdn.jsdelivr.net/npm/vega-embed@7.3.0")
P_TICKS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
COLUMNS = ("p", "n", "seed", "test_error", "converged", "usable_pos", "usable_neg", "d", "m", "q", "sigma_p",
           "mu_norm")


def _check(table) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise ValueError("table: expected a pandas DataFrame (a precomputed phase table)")
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table: missing columns {missing}")
    if len(table) == 0:
        raise ValueError("table: no rows")
    for col in ("d", "m", "q", "sigma_p"):
        if table[col].nunique() != 1:
            raise ValueError(f"table: column {col!r} must be constant (one configuration besides p, n, ||mu||)")
    return table


def _u(p) -> np.ndarray:
    """The x coordinate of the figure: -log10(1 - p) (p = 0.9 and 0.99 equally spaced)."""
    return -np.log10(1 - np.asarray(p, dtype=float))


def _edges(values, transform, inverse) -> dict:
    """value -> (low edge, high edge) of cells centred on the sorted grid, halfway in the transformed scale."""
    v = np.array(sorted(set(float(x) for x in values)))
    if len(v) < 2:
        raise ValueError("table: need at least two grid values on each axis")
    t = transform(v)
    mid = (t[1:] + t[:-1]) / 2
    lo = np.concatenate([[t[0] - (mid[0] - t[0])], mid])
    hi = np.concatenate([mid, [t[-1] + (t[-1] - mid[-1])]])
    return {float(x): (float(inverse(a)), float(inverse(b))) for x, a, b in zip(v, lo, hi)}


def explorer_data(table: pd.DataFrame, *, level: float = SUCCESS_ERROR) -> pd.DataFrame:
    """One row per network: the cell edges (``u_lo``, ``u_hi`` in -log10(1 - p); ``n_lo``, ``n_hi``),
    ``p``, ``n``, ``mu_norm``, ``k`` (the seed's rank in the table, 1 = first), ``converged`` (0/1)
    and ``success`` (1 when the network converged and its test error is below ``level``)."""
    t = _check(table)
    if not 0 < float(level) < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level!r}")
    ue = _edges(_u(t["p"].unique()), lambda x: x, lambda x: x)
    ne = _edges(t["n"].unique(), np.log, np.exp)
    rank = {s: k for k, s in enumerate(sorted(t["seed"].unique()), 1)}
    u = _u(t["p"])
    converged = t["converged"].astype(bool).to_numpy()
    return pd.DataFrame({
        "p": t["p"].to_numpy(float), "n": t["n"].to_numpy(int), "mu_norm": t["mu_norm"].to_numpy(float),
        "u_lo": [ue[float(x)][0] for x in u], "u_hi": [ue[float(x)][1] for x in u],
        "n_lo": [ne[float(x)][0] for x in t["n"]], "n_hi": [ne[float(x)][1] for x in t["n"]],
        "k": t["seed"].map(rank).to_numpy(int),
        "converged": converged.astype(int),
        "success": (converged & (t["test_error"].to_numpy(float) < level)).astype(int),
    })


def race_constant(table: pd.DataFrame, *, level: float = SUCCESS_ERROR) -> float:
    """The race constant C where P(success) = 1/2 along n SNR_p^q, from a logistic fit on the
    converged networks with a usable neuron (the starting point of the slider; the chapter reports
    the fit with its interval on held-out seeds). Falls back to the median statistic when the
    networks all succeed or all fail."""
    t = _check(table)
    ok = t[t["converged"].astype(bool) & ((t["usable_pos"] + t["usable_neg"]) > 0)]
    if len(ok) == 0:
        ok = t
    stat = n_snr_q(ok["n"].to_numpy(float), ok["mu_norm"].to_numpy(float), float(t["sigma_p"].iloc[0]),
                   int(t["d"].iloc[0]), ok["p"].to_numpy(float), float(t["q"].iloc[0]))
    y = (ok["test_error"].to_numpy(float) < level).astype(float)
    if y.min() == y.max():
        return float(np.median(stat))
    a, b = logistic_fit(np.log(stat), y)
    return float(np.exp(-a / b)) if b > 0 else float(np.median(stat))


def boundary_curve(table: pd.DataFrame, *, points: int = 120) -> pd.DataFrame:
    """The race boundary for C = 1 on a fine p grid, per signal norm: columns ``mu_norm``, ``u``,
    ``base`` = 1 / SNR_p^q (the boundary at constant C is n = C x base)."""
    t = _check(table)
    u_max = float(_u(t["p"].max())) + 0.1
    u = np.linspace(0.0, u_max, points)
    p = 1 - 10 ** (-u)
    rows = []
    for mu in sorted(t["mu_norm"].unique()):
        base = 1 / snr_p(float(mu), float(t["sigma_p"].iloc[0]), int(t["d"].iloc[0]), p) ** float(t["q"].iloc[0])
        rows.append(pd.DataFrame({"mu_norm": float(mu), "u": u, "base": base}))
    return pd.concat(rows, ignore_index=True)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")


def phase_explorer_spec(table: pd.DataFrame, *, level: float = SUCCESS_ERROR, width: int = 470,
                        height: int = 330) -> dict:
    """The Vega-Lite specification of the interactive phase diagram of ``table`` (data inlined)."""
    t = _check(table)
    data = explorer_data(t, level=level)
    curve = boundary_curve(t)
    C = race_constant(t, level=level)
    seeds = int(data["k"].max())
    m = int(t["m"].iloc[0])
    mus = sorted(float(v) for v in t["mu_norm"].unique())
    u_lo, u_hi = float(data["u_lo"].min()), float(data["u_hi"].max())
    n_lo, n_hi = float(data["n_lo"].min()), float(data["n_hi"].max())
    log_c = round(float(np.log10(C)), 2)
    params = [
        {"name": "seeds", "value": seeds,
         "bind": {"input": "range", "min": 1, "max": seeds, "step": 1, "name": "seeds (first k) "}},
        {"name": "logC", "value": log_c,
         "bind": {"input": "range", "min": round(log_c - 2, 2), "max": round(log_c + 2, 2), "step": 0.05,
                  "name": "race constant log10 C "}},
        {"name": "level", "value": 0.5,
         "bind": {"input": "range", "min": 0.05, "max": 0.95, "step": 0.05, "name": "P(no usable neuron) "}},
    ]
    mu_filter = []
    if len(mus) > 1:
        params.append({"name": "mu", "value": mus[0],
                       "bind": {"input": "select", "options": mus, "name": "signal norm ||mu|| "}})
        mu_filter = [{"filter": "datum.mu_norm == mu"}]
    x = {"scale": {"domain": [u_lo, u_hi], "nice": False, "zero": False},
         "axis": {"values": [float(_u(v)) for v in P_TICKS if u_lo <= _u(v) <= u_hi],
                  "labelExpr": "format(1 - pow(10, -datum.value), '.2~f')", "title": "pruning fraction p",
                  "grid": False}}
    y = {"scale": {"type": "log", "domain": [n_lo, n_hi], "nice": False},
         "axis": {"values": sorted(int(v) for v in t["n"].unique()), "format": "d",
                  "title": "training samples n", "grid": False}}
    heat = {
        "data": {"values": _csv(data), "format": {"type": "csv", "parse": {c: "number" for c in data.columns}}},
        "transform": [{"filter": "datum.k <= seeds"}, *mu_filter,
                      {"aggregate": [{"op": "sum", "field": "success", "as": "successes"},
                                     {"op": "sum", "field": "converged", "as": "fitted"},
                                     {"op": "count", "as": "networks"}],
                       "groupby": ["p", "n", "u_lo", "u_hi", "n_lo", "n_hi"]},
                      {"filter": "datum.fitted > 0"},
                      {"calculate": "datum.successes / datum.fitted", "as": "fraction"}],
        "mark": {"type": "rect", "stroke": None},
        "encoding": {
            "x": {"field": "u_lo", "type": "quantitative", **x}, "x2": {"field": "u_hi"},
            "y": {"field": "n_lo", "type": "quantitative", **y}, "y2": {"field": "n_hi"},
            "color": {"field": "fraction", "type": "quantitative",
                      "scale": {"domain": [0, 1], "scheme": "viridis"},
                      "legend": {"title": "success", "format": ".1f", "gradientLength": 200}},
            "tooltip": [{"field": "p", "type": "quantitative", "format": ".3f"},
                        {"field": "n", "type": "quantitative"},
                        {"field": "fraction", "type": "quantitative", "format": ".2f", "title": "success fraction"},
                        {"field": "successes", "type": "quantitative"},
                        {"field": "fitted", "type": "quantitative", "title": "converged"},
                        {"field": "networks", "type": "quantitative"}],
        },
    }
    race = {
        "data": {"values": _csv(curve), "format": {"type": "csv", "parse": {c: "number" for c in curve.columns}}},
        "transform": [*mu_filter, {"calculate": "datum.base * pow(10, logC)", "as": "n_boundary"},
                      {"filter": f"datum.n_boundary >= {n_lo} && datum.n_boundary <= {n_hi} && datum.u <= {u_hi}"}],
        "mark": {"type": "line", "color": "#d62728", "strokeWidth": 3, "clip": True},
        "encoding": {"x": {"field": "u", "type": "quantitative"},
                     "y": {"field": "n_boundary", "type": "quantitative"}},
    }
    usable = {
        "data": {"values": [{}]},
        "transform": [{"calculate": f"2 * pow(level, 1 / {2 * m}) - 1", "as": "p_level"},
                      {"calculate": "-log(1 - datum.p_level) / LN10", "as": "u"}],
        "mark": {"type": "rule", "color": "white", "strokeWidth": 3, "strokeDash": [6, 4]},
        "encoding": {"x": {"field": "u", "type": "quantitative"}},
    }
    mu_text = ", ".join(f"{v:g}" for v in mus)
    return {
        "$schema": SCHEMA,
        "description": "Success fraction of each (p, n) cell of a precomputed phase table, with the book's "
                       "race boundary and the usable-neuron law",
        "title": {"text": "Success fraction (test error below " f"{level:g}) per (p, n) cell",
                  "subtitle": [f"d = {int(t['d'].iloc[0])}, m = {m}, q = {float(t['q'].iloc[0]):g}, "
                               f"||mu|| = {mu_text}; red: n SNR_p^q = C; white: P(no usable neuron) = level"]},
        "width": width, "height": height, "params": params, "layer": [heat, race, usable],
        "config": {"font": "sans-serif", "axis": {"labelFontSize": 13, "titleFontSize": 14},
                   "legend": {"labelFontSize": 13, "titleFontSize": 13},
                   "title": {"fontSize": 15, "subtitleFontSize": 13}},
    }


class PhaseExplorer:
    """The interactive figure as a cell output: Vega-Lite's MIME type (JupyterLab renders it) and an
    HTML fallback that uses the book's copies of Vega, else a CDN (Colab, plain Jupyter)."""

    def __init__(self, spec: dict):
        self.spec = spec

    def to_html(self) -> str:
        spec = json.dumps(self.spec, separators=(",", ":"))
        uid = "prunebook-explorer-" + hashlib.sha256(spec.encode()).hexdigest()[:12]
        return f"""<div class="prunebook-explorer" id="{uid}"></div>
<script type="text/javascript">
(function () {{
  var spec = {spec};
  var el = document.getElementById("{uid}");
  var local = {json.dumps(list(LOCAL_SCRIPTS))};
  var cdn = {json.dumps(list(CDN_SCRIPTS))};
  function show() {{
    vegaEmbed(el, spec, {{renderer: "svg", actions: false}}).catch(function (e) {{
      el.textContent = "The interactive figure could not be drawn: " + e;
    }});
  }}
  function load(urls, i, done, fail) {{
    if (i === urls.length) {{ done(); return; }}
    var s = document.createElement("script");
    s.src = urls[i];
    s.onload = function () {{ load(urls, i + 1, done, fail); }};
    s.onerror = fail;
    document.head.appendChild(s);
  }}
  if (window.vegaEmbed) {{ show(); return; }}
  // the book serves Vega itself (no CDN); outside the book the local copies are missing: use a CDN
  load(local, 0, show, function () {{
    load(cdn, 0, show, function () {{
      el.textContent = "The interactive figure needs Vega, which could not be loaded.";
    }});
  }});
}})();
</script>"""

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {VEGA_LITE_MIME: self.spec, "text/html": self.to_html(),
                "text/plain": "<interactive phase diagram (Vega-Lite)>"}


def phase_explorer(table: pd.DataFrame, **kwargs) -> PhaseExplorer:
    """The interactive phase diagram of ``table`` (see :func:`phase_explorer_spec` for the options)."""
    return PhaseExplorer(phase_explorer_spec(table, **kwargs))
