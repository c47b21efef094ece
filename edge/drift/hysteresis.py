"""The state machine that turns each monitor's effect sizes and p-values, one check at a time,
into a state: 0 OK, 1 WARN, 2 ALERT.

A change counts only when it is both large (effect over its threshold) and significant (p under
its threshold): large but noisy and significant but negligible are both not drift. A higher
state is entered after ``enter_checks`` checks in a row that point above the current one; a
state is left only once the change has fallen under ``release`` times the thresholds that
entered it, for ``min_dwell`` checks in a row, so a change near a threshold does not flap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.drift.stats import Counts, Floats

__all__ = ["ALERT", "OK", "WARN", "Hysteresis"]

OK, WARN, ALERT = 0, 1, 2
_NONE = np.zeros(0, np.intp)


class Hysteresis:
    """The states of several monitors, each with its own effect thresholds (PSI for a
    distribution, an absolute excess for a rate) and the same p-value thresholds.

    :attr:`level` holds each monitor's state and :attr:`previous` the state it left last.
    """

    def __init__(
        self,
        effect_warn: Sequence[float],
        effect_alert: Sequence[float],
        *,
        p_warn: float,
        p_alert: float,
        release: float,
        enter_checks: int,
        min_dwell: int,
    ) -> None:
        self.effect_warn: Floats = np.asarray(effect_warn, np.float64)
        self.effect_alert: Floats = np.asarray(effect_alert, np.float64)
        # Significance as -log10 p, as the tests report it: higher is more significant.
        self._sig_warn, self._sig_alert = -math.log10(p_warn), -math.log10(p_alert)
        self.release = release
        self.enter_checks = enter_checks
        self.min_dwell = min_dwell
        w = len(self.effect_warn)
        self.level: Counts = np.zeros(w, np.int64)
        self.previous: Counts = np.zeros(w, np.int64)
        # The current run of checks pointing up (down): its length and its lowest (highest)
        # target, which is where the monitor goes once the run is long enough.
        self._up_run, self._up_min = np.zeros(w, np.int64), np.zeros(w, np.int64)
        self._down_run, self._down_max = np.zeros(w, np.int64), np.zeros(w, np.int64)

    def step(self, effect: Floats, log10p: Floats) -> npt.NDArray[np.intp]:
        """Every monitor's state machine, one check on, given each monitor's effect and
        significance (-log10 p); the monitors that changed state.

        A check points each monitor to a target state: a level it does not hold needs
        effect and significance over that level's thresholds, one it holds only ``release``
        times them. It goes up to the lowest target of ``enter_checks`` higher targets in a
        row, down to the highest of ``min_dwell`` lower ones in a row."""
        level = self.level
        r_warn = np.minimum(effect / self.effect_warn, log10p / self._sig_warn)
        r_alert = np.minimum(effect / self.effect_alert, log10p / self._sig_alert)
        target = np.where(
            r_alert >= np.where(level >= ALERT, self.release, 1.0),
            ALERT,
            np.where(r_warn >= np.where(level >= WARN, self.release, 1.0), WARN, OK),
        )
        if not (target != level).any() and not self._up_run.any() and not self._down_run.any():
            return _NONE  # the usual check: every monitor where it was, nothing pending
        up, down = target > level, target < level
        self._up_min = np.where(
            up, np.where(self._up_run == 0, target, np.minimum(self._up_min, target)), 0
        )
        self._up_run = np.where(up, self._up_run + 1, 0)
        self._down_max = np.where(
            down, np.where(self._down_run == 0, target, np.maximum(self._down_max, target)), 0
        )
        self._down_run = np.where(down, self._down_run + 1, 0)
        new = np.where(
            self._up_run >= self.enter_checks,
            self._up_min,
            np.where(self._down_run >= self.min_dwell, self._down_max, level),
        )
        changed = np.flatnonzero(new != level)
        if len(changed):
            self.previous[changed] = level[changed]
            self._up_run[changed] = 0  # the dwell counts from the change
            self._down_run[changed] = 0
            self.level = new
        return changed
