"""The rules module: parameters validated from configuration, vocabulary helpers, derived views."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from redcloud.config import Settings
from redcloud.rules import Rules, vocab


def test_defaults_come_from_the_packaged_configuration():
    r = Rules.defaults()
    assert r.learning_min_level == "县处级" and r.learning_escalate_after == 5 and r.project_warning_days == 15
    assert r.sanhui_required == {"支委会": 3, "支部党员大会": 1, "党课": 1, "党小组会": 0}
    assert r.sanhui_total == 5 and r.sanhui_types == ("支部党员大会", "支委会", "党课")


def test_obligation_levels_follow_the_configured_minimum():
    r = Rules.defaults()
    assert r.is_obligated("县处级副职") and not r.is_obligated("乡科级正职") and not r.is_obligated(None)
    k = r.replace(learning_min_level="科级")
    assert k.obligated_levels == ("乡科级", "县处级", "厅局级", "省部级") and k.is_obligated("乡科级副职")
    assert not k.is_obligated("科员")


@pytest.mark.parametrize("change, needle", [
    ({"learning_min_level": "村级"}, "unknown cadre level"),
    ({"sanhui_required": {"主题党日": 1}}, "not 三会一课"),
    ({"learning_escalate_after": 0}, "at least 1"),
    ({"project_warning_days": -1}, "must not be negative"),
])
def test_a_bad_parameter_is_refused_with_its_name(change, needle):
    with pytest.raises(ValidationError, match=needle):
        Rules.defaults().replace(**change)


def test_environment_overrides_one_parameter_and_keeps_the_others(monkeypatch):
    monkeypatch.setenv("REDCLOUD_RULES__PROJECT_WARNING_DAYS", "7")
    monkeypatch.setenv("REDCLOUD_RULES__SANHUI_REQUIRED", '{"党小组会": 3}')
    r = Settings().rules
    assert r.project_warning_days == 7 and r.learning_escalate_after == 5
    assert r.sanhui_required == {"支委会": 3, "支部党员大会": 1, "党课": 1, "党小组会": 3} and r.sanhui_total == 8


def test_vocabulary_helpers():
    assert vocab.sql_in(["男", "o'k"]) == "('男','o''k')"
    edges, labels = vocab.band_edges(vocab.AGE_BANDS)
    assert edges == [31, 41, 51, 61, 71] and labels[-1] == "71岁及以上" and len(labels) == len(edges) + 1
    assert vocab.rank_level("县处级正职") == "县处级" and vocab.rank_level("科员") is None
    assert set(vocab.CLOSED_STATES) < set(vocab.PROJECT_STATES)
    dbt = vocab.dbt_vocab()
    assert dbt["project_states"] == list(vocab.PROJECT_STATES) and dbt["age_bands"][-1] == [None, "71岁及以上"]
