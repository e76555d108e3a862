"""Every business rule of the platform, in one place, parameterised from configuration (``[rules]``).

Gold computes each derived status once from a :class:`Rules` object (``spark_jobs/gold``); the
marts, the brief, the alerts, the API and Superset read those columns and never re-derive them.
The vocabulary the rules speak (statuses, types, levels, lifecycle states) is :mod:`redcloud.rules.vocab`.

=====================================  ==========================================  =========================
rule                                   parameter (``[rules]``)                     computed in
=====================================  ==========================================  =========================
who is 在册                             membership status (vocab.ON_ROLL)           silver history, gold dim_member.is_on_roll
三会一课 requirement per quarter         ``sanhui_required``                         gold fct_branch_month / fct_branch_quarter
学习问答 obligation                      ``learning_min_level``                      gold fct_learning_daily.is_obligated
学习问答 escalation                      ``learning_escalate_after``                 gold fct_learning_daily.escalation_due
驻村 每日工作记实 reminder               ``village_reminder_after``                  gold fct_village_work_daily.reminder_due
帮扶 督办预警                            ``project_warning_days``                    gold fct_project_lifecycle / fct_project_status
帮扶 逾期注销 (自动注销)                 ``project_expire_after_days``               gold fct_project_lifecycle / fct_project_status
党费 paid on time                       ``dues_grace_days``                         gold fct_member_month.dues_on_time
岗位责任工作记实 due (四位一体)            ``duty_record_due_workday``                 gold fct_cadre_duty_month.record_missing
班子 正职 vacancy                        ``leadership_vacancy_workdays``             gold fct_unit_leadership.vacancy_overdue
班子 has a young cadre                   ``leadership_young_age``                    gold fct_unit_leadership.lacks_young
干部调训 学时 and the year-end warning    ``training_hours_required``,                gold fct_cadre_training_year
                                       ``training_warning_workdays``
党员疑难问题 answered in time             ``question_answer_workdays``                gold fct_member_question
志愿服务 need matched in time            ``volunteer_match_workdays``                gold fct_volunteer_need
数据铁笼 办件 on time / overdue            (the operation's own deadline)              gold fct_power_operation
帮扶 project without measures           ``project_measure_workdays``                gold fct_project_support.measures_missing
党务公开 时限 and escalation              ``disclosure_due_workdays``,                gold fct_party_disclosure
                                       ``disclosure_escalate_after``
=====================================  ==========================================  =========================
"""

from __future__ import annotations

import json
import tomllib

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from redcloud.rules import vocab


class Rules(BaseModel):
    """The rule parameters of one run (``[rules]`` of the configuration; the values live there, not here).

    See the module docstring for where each parameter applies."""

    learning_min_level: str          # 学习问答 every working day for cadres at this level and above
    learning_escalate_after: int     # consecutive missed working days -> escalation (督办)
    village_reminder_after: int      # working days without a 每日工作记实 -> reminder
    project_warning_days: int        # 督办预警 this many days before a 帮扶 deadline
    project_expire_after_days: int   # an open project is 逾期注销 this many days after its deadline
    dues_grace_days: int             # 党费 on time when paid within this many days after the month
    duty_record_due_workday: int     # a month's 岗位责任工作记实 is due on this working day of the next month
    leadership_vacancy_workdays: int  # a 班子 without a 正职 for more than this many working days -> warning
    leadership_young_age: int        # a 班子 should have a cadre younger than this (年轻干部)
    disclosure_due_workdays: int     # 党务公开 时限: published within this many working days after the event
    disclosure_escalate_after: int   # working days past the 时限 before an unpublished item is escalated (督办)
    project_measure_workdays: int    # a running 帮扶 project with no 帮扶措施 this many working days after its start
    training_hours_required: int     # 干部调训: 学时 a cadre must complete in a year
    training_warning_workdays: int   # warn a cadre short of them when this many working days of the year remain
    question_answer_workdays: int    # a member's question is answered within this many working days
    volunteer_match_workdays: int    # a 志愿服务 need is matched to a team within this many working days
    sanhui_required: dict[str, int]  # 三会一课 meetings required per quarter, by meeting type

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("sanhui_required", mode="before")
    @classmethod
    def _json_text(cls, v):   # REDCLOUD_RULES__SANHUI_REQUIRED='{"支委会": 2, ...}'
        return json.loads(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check(self) -> "Rules":
        vocab.level_of(self.learning_min_level)   # ValueError naming the choices
        unknown = set(self.sanhui_required) - set(vocab.SANHUI_YIKE)
        if unknown:
            raise ValueError(f"[rules] sanhui_required: {sorted(unknown)} are not 三会一课 meeting types "
                             f"({', '.join(vocab.SANHUI_YIKE)})")
        if not 1 <= self.duty_record_due_workday <= 15:
            raise ValueError(f"[rules] duty_record_due_workday must be a working day of the month (1-15), "
                             f"not {self.duty_record_due_workday}")
        for name in ("learning_escalate_after", "village_reminder_after", "leadership_vacancy_workdays",
                     "leadership_young_age", "disclosure_due_workdays", "disclosure_escalate_after",
                     "project_measure_workdays", "training_hours_required", "training_warning_workdays",
                     "question_answer_workdays", "volunteer_match_workdays"):
            if getattr(self, name) < 1:
                raise ValueError(f"[rules] {name} must be at least 1, not {getattr(self, name)}")
        for name in ("project_warning_days", "project_expire_after_days", "dues_grace_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"[rules] {name} must not be negative, not {getattr(self, name)}")
        return self

    # -- derived views of the parameters (no other module re-derives them) ------------------------
    @property
    def obligated_levels(self) -> tuple[str, ...]:
        """Cadre levels with the daily 学习问答 obligation."""
        return vocab.levels_from(self.learning_min_level)

    def is_obligated(self, rank: str | None) -> bool:
        return vocab.rank_level(rank) in self.obligated_levels

    @property
    def sanhui_total(self) -> int:
        """三会一课 meetings required per quarter, all types together."""
        return sum(self.sanhui_required.values())

    @property
    def sanhui_types(self) -> tuple[str, ...]:
        """三会一课 types with a requirement above zero, in vocabulary order."""
        return tuple(t for t in vocab.SANHUI_YIKE if self.sanhui_required.get(t, 0) > 0)

    def replace(self, **changes) -> "Rules":
        """A copy with some parameters changed (validated again)."""
        return type(self)(**{**self.model_dump(), **changes})

    @classmethod
    def defaults(cls) -> "Rules":
        """The packaged defaults (``[rules]`` of ``redcloud/config/default.toml``), e.g. for unit tests."""
        from redcloud.config import DEFAULT_FILE

        with open(DEFAULT_FILE, "rb") as fh:
            return cls(**tomllib.load(fh)["rules"])


__all__ = ["Rules", "vocab"]
