"""``edge eval --report``: one self-contained HTML page with the evaluation's pictures.

Charts are inline SVG drawn here, so the report needs no plotting library on the device and
opens in any browser, offline.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.offline.evaluate import Evaluation

W, H, PAD, LEFT = 420, 300, 44, 64  # LEFT: room for the y tick labels and the y label
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
Series = tuple[str, npt.ArrayLike, npt.ArrayLike]


def _frame(title: str, xlabel: str, ylabel: str, body: str, x_max: float, y_max: float) -> str:
    ticks = []
    for f in (0, 0.5, 1):
        x, y = LEFT + f * (W - LEFT - PAD), H - PAD - f * (H - 2 * PAD)
        ticks.append(
            f'<text x="{x:.0f}" y="{H - PAD + 16}" text-anchor="middle">{f * x_max:.3g}</text>'
        )
        ticks.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.0f}" text-anchor="end">{f * y_max:.3g}</text>'
        )
    return (
        f'<svg width="{W}" height="{H}" font-size="11" font-family="sans-serif">'
        f'<text x="{W / 2}" y="14" text-anchor="middle" font-weight="bold">'
        f"{html.escape(title)}</text>"
        f'<rect x="{LEFT}" y="{PAD}" width="{W - LEFT - PAD}" height="{H - 2 * PAD}" '
        'fill="none" stroke="#999"/>'
        + "".join(ticks)
        + f'<text x="{(W + LEFT - PAD) / 2}" y="{H - 8}" text-anchor="middle">'
        f"{html.escape(xlabel)}</text>"
        f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">'
        f"{html.escape(ylabel)}</text>{body}</svg>"
    )


def _xy(x: float, y: float, x_max: float, y_max: float) -> tuple[float, float]:
    return LEFT + x / x_max * (W - LEFT - PAD), H - PAD - y / y_max * (H - 2 * PAD)


def _legend(names: Sequence[str], corner: str = "top-left") -> str:
    """Names in their series' colours, in a corner the curves leave free."""
    right = corner.endswith("right")
    x = W - PAD - 8 if right else LEFT + 8
    top = H - PAD - 8 - 13 * (len(names) - 1) if corner.startswith("bottom") else PAD + 14
    anchor = "end" if right else "start"
    return "".join(
        f'<text x="{x}" y="{top + 13 * i}" text-anchor="{anchor}" '
        f'fill="{COLOURS[i % len(COLOURS)]}">{html.escape(n)}</text>'
        for i, n in enumerate(names)
    )


def lines(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Sequence[Series],
    *,
    diagonal: bool = False,
    unit_square: bool = False,
    legend: str = "top-left",
) -> str:
    """Polylines; ``unit_square`` fixes both axes to [0, 1] (probabilities, rates)."""
    x_max = 1.0 if unit_square else max(float(np.max(x)) for _, x, _ in series) or 1.0
    y_max = 1.0 if unit_square else max(float(np.max(y)) for _, _, y in series) or 1.0
    body = []
    if diagonal:
        (x0, y0), (x1, y1) = _xy(0, 0, x_max, y_max), _xy(x_max, y_max, x_max, y_max)
        body.append(
            f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#ccc" stroke-dasharray="4"/>'
        )
    for i, (_, xs, ys) in enumerate(series):
        x, y = np.asarray(xs, float), np.asarray(ys, float)
        step = max(1, len(x) // 400)  # a few hundred points draw the same curve
        pts = " ".join(
            "{:.1f},{:.1f}".format(*_xy(a, b, x_max, y_max))
            for a, b in zip(x[::step], y[::step], strict=True)
        )
        body.append(
            f'<polyline points="{pts}" fill="none" stroke-width="1.5" '
            f'stroke="{COLOURS[i % len(COLOURS)]}"/>'
        )
    body.append(_legend([n for n, _, _ in series], legend))
    return _frame(title, xlabel, ylabel, "".join(body), x_max, y_max)


def histograms(title: str, groups: Sequence[tuple[str, npt.ArrayLike]], bins: int = 40) -> str:
    arrays = [np.asarray(v, float) for _, v in groups]
    lo = min(float(np.quantile(a, 0.001)) for a in arrays)
    hi = max(float(np.quantile(a, 0.999)) for a in arrays)
    edges = np.linspace(lo, hi, bins + 1)
    densities = [np.histogram(np.clip(a, lo, hi), edges)[0] / len(a) for a in arrays]
    y_max = max(float(d.max()) for d in densities) or 1.0
    body = []
    for i, dens in enumerate(densities):
        pts = []
        for b, v in enumerate(dens):
            for edge in (b, b + 1):
                pts.append("{:.1f},{:.1f}".format(*_xy(edge / bins, float(v), 1.0, y_max)))
        body.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{COLOURS[i]}"/>')
    body.append(_legend([n for n, _ in groups], "top-right"))
    return _frame(
        title, f"score ({lo:.3g} … {hi:.3g})", "share of frames", "".join(body), 1.0, y_max
    )


def _accuracy_charts(c: dict[str, Any]) -> list[str]:
    """Reliability before and after calibration, risk-coverage: what labels make possible."""
    charts = []
    for key, label in (("reliability_raw", "before"), ("reliability_calibrated", "after")):
        conf, acc, counts = c[key]
        keep = counts >= 5  # a bin of one or two frames is noise, not calibration
        charts.append(
            lines(
                f"Reliability {label} calibration",
                "confidence",
                "accuracy",
                [("accuracy per bin (bins of 5+ frames)", conf[keep], acc[keep])],
                diagonal=True,
                unit_square=True,
            )
        )
    coverage, risk = c["risk_coverage"]
    charts.append(
        lines(
            "Risk-coverage (by calibrated confidence)",
            "coverage",
            "risk (error rate)",
            [("risk", coverage, risk)],
        )
    )
    return charts


def render(evaluation: Evaluation) -> str:
    f, c = evaluation.figures, evaluation.curves
    charts = []
    if f["labelled"]:
        charts += _accuracy_charts(c)
    for name, rocs in c["roc"].items():
        charts.append(
            lines(
                f"ROC: in-distribution vs {name}",
                "false positive rate",
                "true positive rate",
                [(m, fpr, tpr) for m, (fpr, tpr) in rocs.items()],
                diagonal=True,
                unit_square=True,
                legend="bottom-right",
            )
        )
        charts.append(
            histograms(
                f"Default score: in-distribution vs {name}",
                [
                    ("in-distribution", c["scores"]["id"]["default"]),
                    (name, c["scores"][name]["default"]),
                ],
            )
        )
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(m)}</td><td>{v['auroc']:.4f}</td>"
        f"<td>{v['fpr95']:.4f}</td></tr>"
        for n, methods in f["ood"].items()
        for m, v in methods.items()
    )
    summary: dict[str, Any] = {k: v for k, v in f.items() if k not in ("ood", "corruptions")}
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edge eval: "
        f"{html.escape(str(f['model']))}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "td,th{padding:2px 10px;text-align:right}svg{margin:6px}</style></head><body>"
        f"<h1>edge eval — {html.escape(str(f['model']))}</h1>"
        + (
            ""
            if f["labelled"]
            else "<p>The in-distribution data has no labels: accuracy, calibration "
            "(reliability) and risk-coverage are not measured.</p>"
        )
        + f"<pre>{html.escape(json.dumps(summary, indent=2))}</pre>"
        "<h2>Out-of-distribution detection</h2><table><tr><th>set</th><th>method</th>"
        f"<th>AUROC</th><th>FPR@95%TPR</th></tr>{rows}</table>"
        f"<h2>Pictures</h2>{''.join(charts)}"
        + (
            f"<h2>Corruptions</h2><pre>{html.escape(json.dumps(f['corruptions'], indent=1))}</pre>"
            if "corruptions" in f
            else ""
        )
        + "</body></html>"
    )
