"""The drift monitor's state machine on its own, fed synthetic effect sizes and significances
(-log10 p) one check at a time: what it takes to enter WARN or ALERT, what it takes to leave,
and that a change hovering near a threshold does not flap. Then, through the monitor, that no
check steps it before the window holds ``min_frames`` frames of a learnt reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.drift import Monitor, MonitorConfig
from edge.drift.hysteresis import ALERT, OK, WARN, Hysteresis
from edge.judge.calibration import load_calibration
from edge.judge.gate import LEVELS

PSI_WARN, PSI_ALERT = 0.1, 0.25
P_WARN, P_ALERT = 1e-4, 1e-7  # -log10: 4 and 7
DWELL = 4

# One check of one monitor: (effect, -log10 p).
QUIET = (0.0, 0.0)
WARNING = (0.15, 5.0)  # over both WARN thresholds, under ALERT's
ALARM = (0.3, 8.0)  # over both ALERT thresholds
NEAR = (0.07, 3.0)  # 0.7 and 0.75 of the WARN thresholds: over release (0.5), under entering
# In ALERT: under release × ALERT thresholds (0.4 of the effect), still over WARN's.
FADING = (0.1, 5.0)


def machine(
    enter_checks: int = 2, min_dwell: int = DWELL, release: float = 0.5, monitors: int = 1
) -> Hysteresis:
    return Hysteresis(
        [PSI_WARN] * monitors,
        [PSI_ALERT] * monitors,
        p_warn=P_WARN,
        p_alert=P_ALERT,
        release=release,
        enter_checks=enter_checks,
        min_dwell=min_dwell,
    )


def feed(h: Hysteresis, checks: list[tuple[float, float]]) -> list[int]:
    """One monitor's level after each check."""
    levels = []
    for effect, log10p in checks:
        h.step(np.array([effect]), np.array([log10p]))
        levels.append(int(h.level[0]))
    return levels


def into(level: int, *, min_dwell: int = DWELL, release: float = 0.5) -> Hysteresis:
    """A machine that has just entered ``level``."""
    h = machine(min_dwell=min_dwell, release=release)
    feed(h, [WARNING if level == WARN else ALARM] * h.enter_checks)
    assert h.level[0] == level
    return h


def test_a_quiet_stream_stays_ok_and_reports_no_change() -> None:
    h = machine()
    for _ in range(50):
        assert len(h.step(np.array([0.0]), np.array([0.0]))) == 0
    assert h.level[0] == OK


@pytest.mark.parametrize("enter_checks", [1, 2, 3, 5])
def test_entering_warn_takes_enter_checks_in_a_row(enter_checks: int) -> None:
    levels = feed(machine(enter_checks=enter_checks), [WARNING] * (enter_checks + 3))
    assert levels == [OK] * (enter_checks - 1) + [WARN] * 4


def test_a_run_broken_by_one_quiet_check_starts_again() -> None:
    h = machine(enter_checks=3)
    assert feed(h, [WARNING, WARNING, QUIET] * 10) == [OK] * 30
    assert feed(h, [WARNING] * 3) == [OK, OK, WARN]


@pytest.mark.parametrize(
    "check",
    [
        (10.0, 3.9),  # large but not significant
        (0.099, 100.0),  # significant but negligible
    ],
)
def test_drift_must_be_both_large_and_significant(check: tuple[float, float]) -> None:
    assert feed(machine(enter_checks=1), [check] * 20) == [OK] * 20


@pytest.mark.parametrize(
    "check",
    [
        (0.3, 5.0),  # ALERT's effect, only WARN's significance
        (0.2, 50.0),  # ALERT's significance, only WARN's effect
    ],
)
def test_alert_needs_both_alert_thresholds(check: tuple[float, float]) -> None:
    assert feed(machine(), [check] * 10) == [OK] + [WARN] * 9


def test_a_large_change_goes_straight_to_alert_and_says_from_where() -> None:
    h = machine()
    assert len(h.step(np.array([ALARM[0]]), np.array([ALARM[1]]))) == 0
    changed = h.step(np.array([ALARM[0]]), np.array([ALARM[1]]))
    assert changed.tolist() == [0]
    assert (h.level[0], h.previous[0]) == (ALERT, OK)


@pytest.mark.parametrize("run", [[ALARM, WARNING], [WARNING, ALARM]])
def test_going_up_takes_the_lowest_state_of_the_run(run: list[tuple[float, float]]) -> None:
    assert feed(machine(), run) == [OK, WARN]


def test_the_run_to_a_higher_state_counts_from_the_last_change() -> None:
    # Two ALERT checks while entering WARN do not count towards ALERT afterwards.
    h = machine(enter_checks=2)
    assert feed(h, [WARNING, ALARM]) == [OK, WARN]
    assert feed(h, [ALARM, ALARM]) == [WARN, ALERT]
    assert h.previous[0] == WARN


@pytest.mark.parametrize("min_dwell", [1, 4, 8])
def test_leaving_a_state_takes_min_dwell_checks_under_release(min_dwell: int) -> None:
    h = into(WARN, min_dwell=min_dwell)
    assert feed(h, [QUIET] * (min_dwell + 2)) == [WARN] * (min_dwell - 1) + [OK] * 3
    assert h.previous[0] == WARN


def test_a_state_is_held_while_the_change_stays_over_release() -> None:
    h = into(WARN)
    assert feed(h, [NEAR] * 200) == [WARN] * 200
    # ...and the same change does not enter WARN from OK.
    assert feed(machine(enter_checks=1), [NEAR] * 200) == [OK] * 200


def test_alert_is_held_while_the_change_stays_over_release_times_alerts_thresholds() -> None:
    # 0.6 and 0.71 of the ALERT thresholds: not enough to enter ALERT, enough to stay there.
    assert feed(into(ALERT), [WARNING] * 200) == [ALERT] * 200


def test_release_applies_to_significance_as_well_as_effect() -> None:
    # A large effect whose significance fell under release × WARN's (2) is left behind...
    assert feed(into(WARN), [(10.0, 1.9)] * DWELL) == [WARN] * (DWELL - 1) + [OK]
    # ...one still over it is held.
    assert feed(into(WARN), [(10.0, 2.1)] * 50) == [WARN] * 50


def test_release_one_means_no_hysteresis() -> None:
    assert feed(into(WARN, release=1.0), [NEAR] * DWELL) == [WARN] * (DWELL - 1) + [OK]


def test_alert_steps_down_through_warn_as_the_change_fades() -> None:
    h = into(ALERT)
    assert feed(h, [FADING] * DWELL) == [ALERT] * (DWELL - 1) + [WARN]
    assert h.previous[0] == ALERT
    assert feed(h, [QUIET] * DWELL) == [WARN] * (DWELL - 1) + [OK]
    assert h.previous[0] == WARN


def test_going_down_takes_the_highest_state_of_the_run() -> None:
    h = into(ALERT)
    assert feed(h, [QUIET, FADING, QUIET, QUIET]) == [ALERT] * 3 + [WARN]


def test_a_check_that_holds_the_state_restarts_the_dwell() -> None:
    h = into(WARN)
    assert feed(h, [QUIET] * (DWELL - 1) + [NEAR]) == [WARN] * DWELL
    assert feed(h, [QUIET] * DWELL) == [WARN] * (DWELL - 1) + [OK]


def test_a_change_hovering_at_the_threshold_does_not_flap() -> None:
    # Both thresholds scaled by 0.6-1.4, at random: a machine without hysteresis changes state
    # dozens of times on this sequence, this one once (it enters WARN and stays).
    rng = np.random.default_rng(0)
    ratio = rng.uniform(0.6, 1.4, size=300)
    checks = [(PSI_WARN * r, 4.0 * r) for r in ratio]

    def changes(h: Hysteresis) -> int:
        levels = feed(h, checks)
        return sum(a != b for a, b in zip([OK, *levels], levels, strict=False))

    assert changes(machine(enter_checks=2, min_dwell=DWELL, release=0.5)) == 1
    assert changes(machine(enter_checks=1, min_dwell=1, release=1.0)) > 50


def test_each_monitor_has_its_own_thresholds_and_its_own_state() -> None:
    # A PSI monitor and a rate monitor (thresholds 0.05 / 0.15) see the same figures.
    h = Hysteresis(
        [PSI_WARN, 0.05],
        [PSI_ALERT, 0.15],
        p_warn=P_WARN,
        p_alert=P_ALERT,
        release=0.5,
        enter_checks=1,
        min_dwell=DWELL,
    )
    changed = h.step(np.array([0.07, 0.07]), np.array([5.0, 5.0]))
    assert changed.tolist() == [1]
    assert h.level.tolist() == [OK, WARN]
    changed = h.step(np.array([0.3, 0.0]), np.array([8.0, 0.0]))
    assert changed.tolist() == [0]
    assert h.level.tolist() == [ALERT, WARN]


# -- as the monitor drives it ------------------------------------------------------------------


def test_no_check_steps_the_states_before_the_window_holds_min_frames() -> None:
    """Through the monitor, on the bundled model's calibration: the warm-up is learnt, then
    every frame is far past every quantile and rejected. Nothing is judged while warming up
    or while the window holds fewer than ``min_frames``; then ALERT takes ``enter_checks``."""
    loaded = load_calibration(Path(__file__).resolve().parents[1] / "models" / "fashion-line")
    assert loaded is not None
    calibration = loaded[0]
    cfg = MonitorConfig(warmup_frames=300, window_frames=400, min_frames=300, check_every=25)
    tables = {k: np.asarray(d.quantiles) for k, d in calibration.gate.distributions.items()}
    rng = np.random.default_rng(0)

    def frame(far: bool) -> dict[str, float]:
        u = rng.uniform(LEVELS[0], LEVELS[-1])
        return {
            k: float(q[-1] + 10 * (q[-1] - q[0] + 1)) if far else float(np.interp(u, LEVELS, q))
            for k, q in tables.items()
        }

    monitor = Monitor.from_calibration(calibration, cfg)
    states = []
    for i in range(cfg.warmup_frames + cfg.min_frames + 100):
        far = i >= cfg.warmup_frames
        label = int(rng.integers(0, 3 if far else 10))
        decision = "REJECT" if far else str(rng.choice(["ACCEPT", "REVIEW"], p=[0.9, 0.1]))
        states.append(monitor.update(frame(far), label, decision, i / 10))
        if i == cfg.warmup_frames - 1:
            assert monitor.snapshot()["reference"]["status"] == "ready"
        if i == cfg.warmup_frames + cfg.min_frames - 2:
            assert not monitor.snapshot()["evaluated"]
    alert = cfg.warmup_frames + cfg.min_frames + (cfg.enter_checks - 1) * cfg.check_every - 1
    assert set(states[:alert]) == {"ok"}
    assert states[alert] == "alert"
    assert monitor.events[0].frame == alert + 1
