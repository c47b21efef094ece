"""The window against the reference: every monitor's effect size and -log10 p, from counts.

- each gate signal: PSI over the coarse bins (less what sampling noise alone gives) and a
  two-sample Kolmogorov-Smirnov test at every distinct quantile;
- the predicted-class mix: PSI and Pearson's chi-square of the 2 × classes table;
- the REVIEW and REJECT rates: the excess over the reference, and a one-sided test.

Every test counts frames by the monitor's frames per independent observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.drift.reference import ClassReference, Reference
from edge.drift.stats import (
    SMOOTHING,
    Counts,
    Floats,
    chi2_log10_sf,
    ks_log10_sf,
    psi_noise,
    rate_log10p,
)
from edge.drift.window import Tally

__all__ = ["Comparison", "class_mix", "compare"]


@dataclass(frozen=True)
class Comparison:
    """Per monitor (signals, class mix, rates) its effect and -log10 p; and the figures
    snapshots show: per-signal columns, and the class mix's and rates' own."""

    effect: Floats
    log10p: Floats
    signals: dict[str, Floats]
    others: dict[str, dict[str, Any]]


def compare(reference: Reference, tally: Tally, n: int, labels: Sequence[str] | None) -> Comparison:
    """The ``n`` frames counted in ``tally`` against ``reference``; ``labels`` name the
    classes in the class mix's figures."""
    b, m = reference.bins, reference.frames
    count = len(b.edges)
    signals_tau = reference.tau[:count]
    fine = tally.fine.reshape(count, b.width)
    # KS, two-sample against the reference's quantile table, at every distinct quantile.
    ecdf = np.cumsum(fine, axis=1)[:, :-1] / n
    distance = np.max(np.abs(ecdf - b.cdf), axis=1)
    log10p = ks_log10_sf(distance, (n if m is None else n * m / (n + m)) / signals_tau)
    # PSI over the coarse bins, smoothed so that an empty bin is rare rather than never.
    coarse = np.bincount(b.coarse_of, weights=tally.fine, minlength=len(b.coarse_share))
    p, q = (coarse + SMOOTHING) / (n + SMOOTHING * reference.per_bin), reference.q
    raw = np.bincount(b.coarse_signal, weights=(p - q) * np.log(p / q))
    psi = np.maximum(raw - signals_tau * psi_noise(b.coarse_bins, n, m), 0.0)
    # Which way it moved: the window's median, to the resolution of the quantile table.
    median = b.upper[np.arange(len(fine)), np.argmax(ecdf >= 0.5, axis=1)]
    signals = {
        "psi": psi, "psi_raw": raw, "ks": distance, "p": 10.0**-log10p,
        "median": median, "reference_median": b.median, "frames_per_sample": signals_tau,
    }  # fmt: skip
    effects, sigs = [psi], [log10p]
    others: dict[str, dict[str, Any]] = {}
    if reference.classes is not None:
        tau = float(reference.tau[count])
        effect, sig, others["class_mix"] = class_mix(
            tally.classes, n, reference.classes, tau, labels
        )
        effects.append(np.array([effect]))
        sigs.append(np.array([sig]))
    at = count + (reference.classes is not None)
    for i, (name, rate) in enumerate(reference.rates.items(), at):
        x = int(tally.decisions[rate.decision])
        live, expected, tau = x / n, rate.count / rate.frames, float(reference.tau[i])
        sig = rate_log10p(x, n, rate.count, rate.frames, tau)
        others[name] = {
            "rate": live, "expected": expected, "p": 10.0**-sig, "frames_per_sample": tau
        }  # fmt: skip
        effects.append(np.array([live - expected]))
        sigs.append(np.array([sig]))
    return Comparison(np.concatenate(effects), np.concatenate(sigs), signals, others)


def class_mix(
    live: Counts, n: int, ref: ClassReference, tau: float, labels: Sequence[str] | None
) -> tuple[float, float, dict[str, Any]]:
    """The window's class counts ``live`` (``n`` frames) against the reference's: PSI less
    its noise, -log10 p, and the figures snapshots show. Runs of ``tau`` frames of one item
    count as one observation each."""
    m, k = ref.frames, len(ref.counts)
    total = live + ref.counts
    # Pearson's chi-square on the 2 × classes table (window, reference): both rows have
    # the same (O − E)², and 1/E_live + 1/E_ref = (n + m)² / (n · m · total).
    diff = live - total * (n / (n + m))
    chi2 = (n + m) ** 2 / (n * m) * float(np.dot(diff, diff / np.maximum(total, 1)))
    sig = chi2_log10_sf(chi2 / tau, int(np.count_nonzero(total)) - 1)
    p, q = (live + SMOOTHING) / (n + SMOOTHING * k), ref.q
    raw = float(np.dot(p - q, np.log(p / q)))
    psi = max(0.0, raw - tau * (k - 1) * (1 / n + 1 / m))
    top = int(np.argmax(live * m - ref.counts * n))
    detail = {
        "psi": psi,
        "psi_raw": raw,
        "chi2": chi2,
        "p": 10.0**-sig,
        "most_over": labels[top] if labels else top,
        "share": float(live[top] / n),
        "expected_share": float(ref.counts[top] / m),
        "frames_per_sample": tau,
    }
    return psi, sig, detail
