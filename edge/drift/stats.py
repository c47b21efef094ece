"""The statistics the drift monitor's tests rest on: tail probabilities (normal, chi-square,
Kolmogorov-Smirnov, a one-sided rate test), what PSI reads by chance alone, and how many video
frames make one independent observation. Plain NumPy and ``math``: no SciPy on the device.

P-values are returned as -log10 p so that "p = 1e-40" neither underflows nor ties with 1e-300.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "SMOOTHING",
    "Counts",
    "Floats",
    "chi2_log10_sf",
    "frames_per_sample",
    "ks_log10_sf",
    "norm_log10_sf",
    "psi_noise",
    "rate_log10p",
]

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

#: Added to every bin's count before PSI takes logarithms: an empty bin is "rare", not "never".
SMOOTHING = 0.5
_LN10 = math.log(10.0)


def norm_log10_sf(z: float) -> float:
    """-log10 P(Z > z) for a standard normal Z."""
    if z < 30:
        return -math.log10(max(0.5 * math.erfc(z / math.sqrt(2)), 1e-300))
    # Mills' ratio: erfc underflows out here; the asymptote is exact to 1/z².
    return (z * z / 2 + math.log(z * math.sqrt(2 * math.pi))) / _LN10


def chi2_log10_sf(x: float, df: int) -> float:
    """-log10 P(χ²_df > x), by the regularised upper incomplete gamma Q(df/2, x/2)."""
    if x <= 0 or df < 1:
        return 0.0
    a, y = df / 2, x / 2
    log_prefix = -y + a * math.log(y) - math.lgamma(a)
    if y < a + 1:
        # Series for P(a, y); Q = 1 − P is not small here, so no precision is lost.
        term = total = 1 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= y / n
            total += term
        q = 1 - math.exp(log_prefix + math.log(total))
        return -math.log10(max(q, 1e-300))
    # Continued fraction for Q(a, y) (modified Lentz), kept in logarithms so that a huge
    # statistic gives a huge -log10 p rather than 0.
    tiny = 1e-300
    b = y + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 300):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return -(log_prefix + math.log(h)) / _LN10


#: Terms of the Kolmogorov series: the first one left out is under 2e-6 for lam >= 0.2.
_KS_K2 = np.arange(1, 13, dtype=np.float64)[:, None] ** 2
_KS_SIGNS = 2 * (-1.0) ** np.arange(12)


def ks_log10_sf(d: Floats, n: float | Floats) -> Floats:
    """-log10 of the asymptotic Kolmogorov-Smirnov p-value of distances ``d`` at effective
    sample size ``n``, with Stephens' small-sample correction (as in Numerical Recipes)."""
    root = np.sqrt(n)
    # Under lam = 0.2, p > 0.999999: clamped there, where 12 terms are exact to 2e-6.
    lam2 = np.maximum(((root + 0.12 + 0.11 / root) * d) ** 2, 0.04)
    series = _KS_SIGNS @ np.exp(-2 * _KS_K2 * lam2)
    # Past lam = 3 only the first term matters (the second is e^-54 of it), and it is taken
    # in logarithms: the series itself underflows to 0 for lam > 19.
    out: Floats = np.where(
        lam2 > 9, (2 * lam2 - math.log(2)) / _LN10, -np.log10(np.clip(series, 1e-300, 1.0))
    )
    return out


def rate_log10p(x: int, n: int, x0: int, m: int, tau: float = 1.0) -> float:
    """-log10 p of "the window's rate x/n is higher than the reference's x0/m": the signed
    root of the likelihood-ratio (G) statistic of the 2 × 2 table, one-sided (fewer REVIEWs
    or REJECTs than calibration is not what this watches for). Frames come ``tau`` to an
    independent observation: G shrinks by as much."""
    if x * m <= x0 * n:
        return 0.0
    pooled = (x + x0) / (n + m)

    def term(observed: float, expected: float) -> float:
        return observed * math.log(observed / expected) if observed > 0 else 0.0

    g = 2 * (
        term(x, n * pooled)
        + term(n - x, n * (1 - pooled))
        + term(x0, m * pooled)
        + term(m - x0, m * (1 - pooled))
    )
    return norm_log10_sf(math.sqrt(max(g / tau, 0.0)))


def frames_per_sample(x: Floats) -> float:
    """How many frames of the series ``x`` (frames, k) carry one frame's worth of independent
    information: the integrated autocorrelation time, 1 + 2 Σ rho(lag), of the k series' summed
    autocovariances, by Geyer's initial monotone sequence (sums of adjacent lags, cut at the
    first that is not positive, made non-increasing). Video is not i.i.d.: an item rests
    under the camera for a second, so its frames are one observation, not twenty."""
    x = x - x.mean(axis=0)
    n = len(x)
    spectrum = np.fft.rfft(x, 2 * n, axis=0)
    acov = np.fft.irfft(np.abs(spectrum) ** 2, 2 * n, axis=0)[:n].sum(axis=1)
    if n < 4 or acov[0] <= 1e-12 * n:
        return 1.0  # a constant series: nothing to correct
    pairs = (acov[: n - n % 2] / acov[0]).reshape(-1, 2).sum(axis=1)
    positive = pairs > 0
    stop = int(np.argmin(positive)) if not positive.all() else len(pairs)
    return max(1.0, float(-1 + 2 * np.minimum.accumulate(pairs[:stop]).sum()))


def psi_noise(bins: npt.ArrayLike, n: int, m: int | None) -> Floats:
    """What PSI reads with no drift at all: n·PSI is about χ² with bins − 1 degrees of freedom
    (per sample), so a 500-frame window over 12 bins reads ~0.03 by chance alone."""
    out: Floats = (np.asarray(bins, np.float64) - 1) * (1 / n + (0.0 if m is None else 1 / m))
    return out
