"""Pieces of the models that need no lake: vitality weights, AHP, the short-history guard, features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from redcloud.config import get_settings


def _env():
    """A model environment without a lake: enough for checks that refuse before reading or logging."""
    import datetime as dt

    from models.common import Env

    s = get_settings()
    return Env(lake=None, cfg=s.models, mlflow_cfg=s.mlflow, day=dt.date(2025, 12, 31))


def test_entropy_weights_guard_log_zero_and_flip():
    from models.member_vitality.features import INDICATOR_NAMES, INDICATORS
    from models.member_vitality.model import entropy_weights, normalise

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((200, len(INDICATOR_NAMES))), columns=INDICATOR_NAMES)
    X["volunteer_hours"] = 0.0                      # all zeros: no information, must not produce NaN
    X.loc[:9, "login_days"] = 1.0                   # sparse: high divergence
    X.loc[10:, "login_days"] = 0.0
    lo, hi = X.min(), X.max()
    Z = normalise(X, lo, hi)
    low = [c for c in INDICATOR_NAMES if not INDICATORS[c][2]][0]
    assert np.allclose(Z[low], 1 - (X[low] - lo[low]) / (hi[low] - lo[low]))   # lower is better: flipped
    w = entropy_weights(Z)
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0)
    assert w["volunteer_hours"] == pytest.approx(0.0)
    assert w["login_days"] == w.max()


def test_ahp_consistency_ratio():
    from models.member_vitality.model import ahp

    cfg = get_settings().models.vitality_ahp_matrix
    w, cr = ahp(cfg)
    assert cr < 0.1 and w.sum() == pytest.approx(1.0) and w[0] > w[-1]
    bad = [[1, 9, 1 / 9, 1, 1], [1 / 9, 1, 9, 1, 1], [9, 1 / 9, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert ahp(bad)[1] > 0.1


def test_short_history_is_refused_with_the_rule_not_a_numpy_error():
    """A lake with one graded year / one complete quarter / only holdout months cannot train the split
    designs: each says which rule and what it found (the stage then skips that model)."""
    from models.branch_innovation import train as bt
    from models.cadre_evaluation import train as ct
    from models.common import NotEnoughHistory
    from models.member_vitality import train as vt

    one_year = pd.DataFrame({"cadre_id": [1, 2, 3], "year": [2025] * 3, "grade_code": [1.0, 2.0, 1.0]})
    with pytest.raises(NotEnoughHistory, match=r"observed graded years: \[2025\]"):
        ct.split(one_year)
    two_years = pd.concat([one_year, one_year.assign(year=2024)])
    tr, te, year = ct.split(two_years)
    assert year == 2025 and len(tr) == len(te) == 3
    one_quarter = pd.DataFrame({"org_id": [1, 2], "quarter": pd.to_datetime(["2025-10-01"] * 2),
                                "quarter_complete": [True, True]})
    with pytest.raises(NotEnoughHistory, match="complete quarters in the lake: .*2025-10-01"):
        bt.train(_env(), one_quarter, pd.DataFrame())
    three_months = pd.DataFrame({"member_id": [1, 1, 1], "month": pd.to_datetime(["2025-10-01", "2025-11-01",
                                                                                  "2025-12-01"])})
    with pytest.raises(NotEnoughHistory, match="months in the lake: 3"):
        vt.train(_env(), three_months)


def test_no_protected_attribute_is_a_feature():
    from models.cadre_evaluation import features as cf
    from models.integrity_portrait import features as inf

    protected = {"gender", "ethnicity", "ethnic", "age", "birth", "民族", "性别", "年龄"}
    for names in (cf.FEATURE_NAMES, inf.FEATURE_NAMES):
        assert not {n for n in names if protected & set(n.split("_"))}
    assert "village_record_rate" in cf.FEATURE_NAMES  # token match, not substring ("vill-age")


def test_feature_health_refuses_an_empty_or_missing_feature():
    from models.common import FeatureHealthError, check_features

    df = pd.DataFrame({"ok": [1.0, np.nan], "empty": [np.nan, np.nan]})
    check_features(df, ["ok"], "m")
    with pytest.raises(FeatureHealthError, match=r"m: .*2 rows: empty"):
        check_features(df, ["ok", "empty"], "m")
    with pytest.raises(FeatureHealthError, match="missing_one"):
        check_features(df, ["missing_one"], "m")
