"""The drift monitor: does what the camera sees still look like what it did when it started (or
like what the model was calibrated on)?

Compares rolling windows of live frames — the last ``window_frames`` frames, no older than
``window_seconds`` — with a reference, without labels. The reference (``reference``) is the
station's own first ``warmup_frames`` frames (the default), binned on the calibration's
quantile tables, or what ``edge calibrate`` recorded:

- each gate signal (frame statistics and OOD scores): the population stability index over
  coarse bins (quantiles of the calibration data, so every bin was equally likely) and a
  Kolmogorov-Smirnov test against the calibration's empirical CDF (its quantile table);
- the predicted-class mix: a chi-square test of the window's counts against calibration's;
- the REVIEW and REJECT rates: a one-sided likelihood-ratio test against calibration's.

Every test is two-sample: the reference is a few thousand frames, not the truth, and treating
it as exact would turn its own sampling noise into false alarms. Nor are a video's frames
independent: an item rests under the camera for a second or more. With the warm-up reference
each monitor's frames per independent observation (its integrated autocorrelation time) is
measured on the warm-up, and every test counts frames by it; without that, a 500-frame window
of a line (~17 items) read as 500 independent draws alarms within a minute of a stable line.
Calibration frames are independent images, so against the calibration it is 1.

A monitor enters WARN or ALERT only when the change is both large (PSI, or rate excess, over
its threshold) and significant (p under its threshold) — large but noisy and significant but
negligible are both not drift — at ``enter_checks`` checks in a row. It leaves a state only
once the change has fallen under ``release`` times the entering thresholds for ``min_dwell``
checks in a row, so a change near a threshold does not flap. The overall state is the worst
monitor's.

The parts: :mod:`.config` (the ``[monitor]`` section), :mod:`.stats` (tail probabilities and
frames per observation), :mod:`.bins` (the quantile tables as bins), :mod:`.window` (the rolling
window's ring and counts), :mod:`.reference` (the calibration's or the warm-up's), :mod:`.compare`
(window against reference), :mod:`.hysteresis` (effects and p-values to states), :mod:`.report`
(states, events, snapshots' figures) and :mod:`.monitor` (:class:`Monitor`, which ties them).
"""

from edge.drift.config import MonitorConfig
from edge.drift.monitor import Monitor
from edge.drift.report import STATE_LEVEL, DriftEvent

__all__ = ["STATE_LEVEL", "DriftEvent", "Monitor", "MonitorConfig"]
