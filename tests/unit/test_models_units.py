"""Pieces of the models that need no lake: vitality weights, AHP, the short-history guard, features."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from redcloud.config import get_settings


def _env():
    """A model environment without a lake: enough for checks that refuse before reading or logging."""
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
    from models.integrity_portrait import train as it

    day = dt.date(2025, 12, 31)
    with pytest.raises(NotEnoughHistory, match="complete label year"):
        it.training_cutoffs(dt.date(2025, 10, 1), day)     # a 3-month lake
    assert it.training_cutoffs(dt.date(2023, 1, 1), day)[1]  # the 36-month lake trains


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


def test_serving_rule_keeps_the_simpler_method_unless_the_complex_one_wins_by_the_margin():
    from models.baselines import Scored, choose_served

    single, linear, xgb = (Scored("single_feature", "单一指标", 0.70, 0.6, 0.8, True),
                           Scored("linear", "线性回归", 0.75, 0.7, 0.8, True), Scored("xgboost", "XGBoost", 0.755, 0.7, 0.8, True))
    served, why = choose_served([single, linear, xgb], margin=0.01)
    assert served.method == "linear" and "保留线性回归" in why
    assert choose_served([single, linear, xgb], margin=0.001)[0].method == "xgboost"
    assert choose_served([single, linear, xgb], margin=0.2)[0].method == "single_feature"


def test_bootstrap_interval_brackets_the_score_and_narrows_with_more_rows():
    from models.baselines import bootstrap_ci

    rng = np.random.default_rng(1)
    acc = lambda y, p: float((y == p).mean())  # noqa: E731
    widths = []
    for n in (50, 2000):
        y = rng.integers(0, 2, n)
        p = np.where(rng.random(n) < 0.8, y, 1 - y)
        point, lo, hi = bootstrap_ci(acc, y, p, n=200, seed=3)
        assert lo <= point <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3


def test_cadre_baselines_are_fitted_on_training_years_only():
    """The single feature is chosen on the training years; on a test year where another feature would
    win, the choice does not move."""
    from models.cadre_evaluation import features as cf
    from models.cadre_evaluation import train as ct

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({f: rng.normal(size=n) for f in cf.FEATURE_NAMES})
    df["year"] = np.repeat([2024, 2025], n // 2)
    tr_mask = df.year == 2024
    signal = np.where(tr_mask, df.duty_review_score, df.ic_items)
    df["grade_code"] = np.digitize(signal, np.quantile(signal, [0.05, 0.15, 0.85])).astype(float)
    df["cadre_id"] = np.arange(n)
    tr, te, _ = ct.split(df)
    assert ct.best_single_feature(tr) == "duty_review_score"
    prev = pd.DataFrame({"cadre_id": pd.Series(dtype="int64"), "year": pd.Series(dtype="int64"),
                         "prev_grade_code": pd.Series(dtype="float64")})
    model, served, rows, why = ct.compare(tr, te, prev, seed=1, margin=0.01)
    assert {r.method for r in rows} == {"single_feature", "linear", "xgboost", "prev_grade"}
    assert served.method in {"single_feature", "linear", "xgboost"} and why
    out = model.predict(None, te.head(3))
    assert set(out.columns) >= {"predicted_grade", "score", "top_factors", "dim_ji"}


def test_integrity_calibration_is_monotone_and_an_inverted_platt_slope_is_refused():
    """Every method's probability never falls as its raw score rises (isotonic or Platt with a positive
    slope); with few positives an inverted Platt slope is refused (isotonic instead); the cut-offs are a
    forecast's (the test cut-off's label year ends on the logical date, training years before it)."""
    from models.integrity_portrait import features as inf
    from models.integrity_portrait import train as it
    from models.integrity_portrait.model import MonotoneCalibrator

    rng = np.random.default_rng(5)
    n = 300
    X = pd.DataFrame({f: rng.poisson(1.0, n).astype(float) for f in inf.FEATURE_NAMES})
    risk = X.n_penalties + X.n_complaints + rng.normal(0, 0.5, n)
    y = (risk >= np.sort(risk)[-12]).astype(int).to_numpy()   # 12 positives: Platt
    groups = np.arange(n) % 100
    for method in it.METHODS:
        model = it.fit(method, X, y, groups, seed=3)
        assert model.calibrator.increasing, method
        raw, p = model.raw(X), model.probability(X)
        order = np.argsort(raw, kind="stable")
        assert (np.diff(p[order]) >= -1e-12).all(), method          # monotone increasing in the raw score
        assert model.contributions(X.head(4)).shape == (4, len(inf.FEATURE_NAMES))
    assert it.fit("xgboost", X, y, groups, seed=3).calibrator.kind == "platt"
    assert it.fit("rule_public_records", X, y, groups, seed=3).raw(X.head(2)).tolist() == \
        (X.n_penalties + X.n_enforcement + X.n_negative_news).head(2).tolist()
    # a score that ranks the positives last: Platt would take a negative slope, which is refused
    inverted = MonotoneCalibrator.fit(-risk.to_numpy(), y)
    assert inverted.kind.startswith("isotonic") and inverted.increasing
    all_c, train_c, test_c = it.cutoffs(dt.date(2023, 1, 1), dt.date(2025, 12, 31))
    assert test_c == dt.date(2024, 12, 31) and all_c[-1] == test_c
    assert train_c[-1] == dt.date(2023, 12, 31) and train_c[0] >= dt.date(2023, 4, 1)
    assert all(c + dt.timedelta(days=inf.HORIZON_DAYS) <= test_c for c in train_c)


def test_vitality_weightings_are_compared_on_held_out_lapses_without_the_truth():
    """Four weightings, one normalisation; each scored on the held-out months' lapses (never on the
    planted truth), and the served one is the serving rule's choice."""
    from models.member_vitality import features as vf
    from models.member_vitality import train as vt

    rng = np.random.default_rng(2)
    members, months = 120, pd.date_range("2025-01-01", periods=9, freq="MS").date
    latent = rng.normal(size=members)
    rows = []
    for t in months:
        for i in range(members):
            act = latent[i] + rng.normal(0, 0.7)
            rows.append({"member_id": i, "month": t, "org_id": 1,
                         **{c: max(0.0, 3 + act + rng.normal(0, 1)) for c in vf.INDICATOR_NAMES},
                         "dues_on_time": float(act > -1.0), "learning_days": float(max(0, round(2 + act)))})
    df = pd.DataFrame(rows)
    held = list(months[-3:])
    tr = df[~df.month.isin(held)]
    fitted, _ = vt.fit(tr, [], 0.0, 0.1)
    served, model, scores, why = vt.compare(df, tr, held, fitted, seed=1, margin=0.01)
    assert [s.method for s in scores] == ["single_feature", "equal", "entropy_ahp", "pca"]
    assert all(s.lo <= s.score <= s.hi for s in scores) and why
    assert max(s.score for s in scores) > 0.3     # active members lapse less
    assert vt.pca_weights(tr[vf.INDICATOR_NAMES]).sum() == pytest.approx(1.0)
    assert served.method in vt.METHODS and model.weights.sum() == pytest.approx(1.0)


def test_the_planted_truth_is_read_only_in_a_report_step():
    """Reading the code path: in every model's training module the truth directory is reached only from
    a function named ``report``, which runs after the model, its cut-offs and its weights are fixed."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "models"
    for train_py in sorted(root.glob("*/train.py")):
        tree = ast.parse(train_py.read_text(encoding="utf-8"))
        for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            names = {a.attr for a in ast.walk(fn) if isinstance(a, ast.Attribute)} | \
                    {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
            if fn.name != "report":
                assert "truth_dir" not in names and "truth_check" not in names, f"{train_py}: {fn.name} reads the truth"
        src = train_py.read_text(encoding="utf-8")
        assert "read_parquet" not in src, f"{train_py} reads a file directly"
        if "def report(" in src:   # and report runs after everything was fitted: last call in train()
            train_fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train")
            line = {}
            for c in ast.walk(train_fn):
                if isinstance(c, ast.Call) and isinstance(c.func, ast.Name):
                    line.setdefault(c.func.id, []).append(c.lineno)
            assert min(line["report"]) > max(line.get("fit", []) + line.get("compare", [])), train_py


def test_archetypes_are_named_from_their_centres_never_by_number():
    """Six clusters for five profile names: the extra ones get 均衡发展型 or a joined profile name."""
    from models.branch_innovation import features as bf
    from models.branch_innovation import train as bt

    rng = np.random.default_rng(4)
    for k in (3, 4, 5, 6, 7):
        centers = rng.normal(0, 1, (k, len(bf.INNOVATION_NAMES)))
        names = bt.name_clusters(centers)
        assert len(set(names)) == k, names
        assert not any(ch.isdigit() for n in names for ch in n), names
    centers = np.vstack([np.full(len(bf.INNOVATION_NAMES), v) for v in (-2, 2, 1.5, 1.2, 1.0, 0.1)])
    assert "均衡发展型" in bt.name_clusters(centers)


def test_archetype_names_survive_a_retrain_that_reorders_and_moves_the_clusters():
    """A retrain finds the same clusters in another order, slightly moved, plus a new one: the matched
    clusters keep the champion's names (even where naming from the centre would now pick another), the
    new one is named from its centre with a name not yet used."""
    from sklearn.preprocessing import StandardScaler

    from models.branch_innovation import features as bf
    from models.branch_innovation import train as bt

    rng = np.random.default_rng(8)
    k, p = 4, len(bf.INNOVATION_NAMES)
    X = rng.normal(0, 1, (400, p))
    scaler = StandardScaler().fit(X)
    old_z = rng.normal(0, 1.5, (k, p))
    old_names = ["规范组织型", "创新活跃型", "活力待提升型", "志愿服务型"]   # as a champion had them
    old = scaler.inverse_transform(old_z)
    order = [2, 0, 3, 1]
    new_z = np.vstack([old_z[order] + rng.normal(0, 0.1, (k, p)), np.full(p, 4.0)])
    names = bt.stable_names(scaler.inverse_transform(new_z), scaler, (old, old_names))
    assert names[:k] == [old_names[i] for i in order]
    assert names[k] not in old_names and not any(ch.isdigit() for ch in names[k])
    assert bt.stable_names(scaler.inverse_transform(new_z), scaler, None) == bt.name_clusters(new_z)
    far = bt.stable_names(scaler.inverse_transform(old_z + 5.0), scaler, (old, old_names))
    assert len(set(far)) == k   # nothing close enough: all named afresh, still unique


def test_fairness_table_gives_error_rates_per_group_and_flags_a_gap():
    """Per group: accuracy, error and over/under-grading; a group whose accuracy is more than
    ``max_gap`` below the accuracy on all cadres is flagged; groups below ``min_n`` are reported, not compared."""
    from models.cadre_evaluation.evaluate import fairness

    n = 40
    obs = np.array([2] * n + [2] * n + [2] * 3)
    pred = np.array([2] * n + [2] * (n // 2) + [3] * (n // 2) + [0] * 3)   # women: half graded one higher
    df = pd.DataFrame({"grade_code": obs, "predicted_grade": pred, "gender": ["男"] * n + ["女"] * n + ["男"] * 3,
                       "ethnicity": ["汉族"] * n + ["汉族"] * n + ["苗族"] * 3, "age_band": ["35-44岁"] * (2 * n + 3)})
    overall = 60 / 83
    f = fairness(df, max_gap=0.10, min_n=30).set_index(["attribute", "group"])
    women, men = f.loc[("gender", "女")], f.loc[("gender", "男")]
    assert women["accuracy"] == 0.5 and women["over_rate"] == 0.5 and women["under_rate"] == 0
    assert women["mean_abs_error"] == 0.5 and women["predicted_share_3"] == 0.5 and women["observed_share_3"] == 0
    assert men["accuracy"] == pytest.approx(40 / 43)
    assert women["accuracy_gap"] == pytest.approx(overall - 0.5) and bool(women["flagged"])
    assert men["accuracy_gap"] < 0 and not bool(men["flagged"])
    small = f.loc[("ethnicity", "苗族")]     # 3 cadres, all wrong: reported, never compared
    assert small["n"] == 3 and small["accuracy"] == 0 and np.isnan(small["accuracy_gap"]) and not small["flagged"]
    han = f.loc[("ethnicity", "汉族")]
    assert han["accuracy_gap"] == pytest.approx(overall - 0.75) and not bool(han["flagged"])
    assert f.loc[("age_band", "35-44岁"), "accuracy_gap"] == pytest.approx(0) and not f.loc[("age_band", "35-44岁"), "flagged"]
