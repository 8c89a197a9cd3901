"""Feature drift: none for the same distribution, past the alert for a shifted one."""

from __future__ import annotations

import numpy as np

from arbbot.scoring.drift import DRIFT_ALERT, psi, reference


def test_the_same_distribution_does_not_drift_a_shifted_one_does() -> None:
    rng = np.random.default_rng(1)
    train = np.column_stack([rng.normal(0, 1, 5000), rng.integers(2, 5, 5000), np.full(5000, 7.0)])
    ref = reference(train, ("a", "hops", "const"))
    same = np.column_stack([rng.normal(0, 1, 2000), rng.integers(2, 5, 2000), np.full(2000, 7.0)])
    shifted = np.column_stack([rng.normal(1.0, 1, 2000), np.full(2000, 4), np.full(2000, 9.0)])
    calm = psi(ref, same, ("a", "hops", "const"))
    moved = psi(ref, shifted, ("a", "hops", "const"))
    assert max(calm.values()) < 0.05
    assert all(v > DRIFT_ALERT for v in moved.values()), moved
    assert psi(ref, same[:, :1], ("unknown",)) == {}
    nan = same.copy()
    nan[:, 0] = np.nan
    assert "a" not in psi(ref, nan, ("a", "hops", "const"))
