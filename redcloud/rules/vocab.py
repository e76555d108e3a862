"""The platform's business vocabulary: every status, type, level, state and label, named once.

Code, SQL (through dbt vars), quality suites and dashboards take these values from here; nothing
else spells them. Values are what the source systems and the users write (Simplified Chinese).
"""

from __future__ import annotations

# --- members --------------------------------------------------------------------------------------
ON_ROLL = "在册"                      # a member counted in the organisation's statistics
TRANSFERRED_OUT = "已转出"
DECEASED = "已去世"
MEMBERSHIP_STATUSES = (ON_ROLL, TRANSFERRED_OUT, DECEASED)
FULL_MEMBER, PROBATIONARY = "正式党员", "预备党员"
PARTY_STATUSES = (FULL_MEMBER, PROBATIONARY)
# member_status_changes.change_type
JOIN, CONFIRM, TRANSFER_IN, TRANSFER_OUT, MOBILE, DEATH = "入党", "转正", "转入", "转出", "流动", "去世"
CHANGE_TYPES = (JOIN, CONFIRM, TRANSFER_IN, TRANSFER_OUT, MOBILE, DEATH)
GENDERS = ("男", "女")
FEMALE = "女"
HAN = "汉族"
EDUCATION = ("初中及以下", "高中/中专", "大专", "大学本科", "研究生")
# statistics bands: (upper bound exclusive, label); the last label has no upper bound
AGE_BANDS = ((31, "30岁及以下"), (41, "31-40岁"), (51, "41-50岁"), (61, "51-60岁"), (71, "61-70岁"),
             (None, "71岁及以上"))
PARTY_YEARS_BANDS = ((5, "5年以下"), (10, "5-9年"), (20, "10-19年"), (30, "20-29年"), (50, "30-49年"),
                     (None, "50年及以上"))

# --- organisations --------------------------------------------------------------------------------
CITY, COUNTY, TOWN, PARTY_COMMITTEE, BRANCH = "市委", "区县委", "乡镇街道", "党委/党总支", "党支部"
ORG_LEVELS = (CITY, COUNTY, TOWN, PARTY_COMMITTEE, BRANCH)
ORG_TYPES = ("党(工)委", "党委", "党总支", "村", "社区", "机关", "国企", "非公企业", "学校", "医院")

# --- organisational life: 三会一课 and other activities -------------------------------------------
GENERAL_MEETING, COMMITTEE_MEETING, GROUP_MEETING, PARTY_LECTURE = "支部党员大会", "支委会", "党小组会", "党课"
THEME_DAY = "主题党日"
SANHUI_YIKE = (GENERAL_MEETING, COMMITTEE_MEETING, GROUP_MEETING, PARTY_LECTURE)   # 三会一课
INNOVATIVE_ACTIVITIES = ("联学共建", "红色教育实践", "专题研讨", "数字党建实践", "党员志愿服务日", "微党课比赛")
MEETING_TYPES = SANHUI_YIKE + (THEME_DAY,) + INNOVATIVE_ACTIVITIES
PRESENT, EXCUSED, ABSENT = "出席", "请假", "缺席"
ATTENDANCE_STATUSES = (PRESENT, EXCUSED, ABSENT)

# --- cadres ---------------------------------------------------------------------------------------
# levels from low to high; a rank is "<level>正职" or "<level>副职"
LEVELS = ("乡科级", "县处级", "厅局级", "省部级")
LEVEL_ALIASES = {"科级": "乡科级", "乡科级": "乡科级", "处级": "县处级", "县处级": "县处级",
                 "厅级": "厅局级", "厅局级": "厅局级", "省部级": "省部级"}
RANKS = ("县处级正职", "县处级副职", "乡科级正职", "乡科级副职")
POST_RANKS = RANKS + ("科员",)          # earlier posts in a cadre's history may be below 科级
LEADING_RANKS = ("县处级正职", "县处级副职", "乡科级正职")   # 领导干部 (integrity portrait population)
CHIEF_RANKS = ("县处级正职", "乡科级正职")          # 正职: a 班子's chief posts (the 班子 is a unit's RANKS holders)
# cadre changes (gold fct_cadre_change), from one post to the next in cadre_post_history
APPOINTED, PROMOTED, DEMOTED, TRANSFERRED, REASSIGNED, LEFT = "任职", "晋升", "降职", "交流", "岗位调整", "免职"
CADRE_CHANGE_TYPES = (APPOINTED, PROMOTED, DEMOTED, TRANSFERRED, REASSIGNED, LEFT)
GRADES = ("优秀", "称职", "基本称职", "不称职")          # annual assessment, best first
DISCIPLINE_ACTIONS = ("诫勉谈话", "党内警告", "党内严重警告", "撤销党内职务", "留党察看", "开除党籍")
VILLAGE_ROLES = ("第一书记", "驻村工作队长", "驻村工作队员")

# --- 精准帮扶 project lifecycle (computed once, in gold fct_project_lifecycle) ----------------------
IN_PROGRESS, DEADLINE_WARNING, OVERDUE, COMPLETED, EXPIRED = "进行中", "督办预警", "已逾期", "已完成", "逾期注销"
PROJECT_STATES = (IN_PROGRESS, DEADLINE_WARNING, OVERDUE, COMPLETED, EXPIRED)
CLOSED_STATES = (COMPLETED, EXPIRED)
# what the app itself stores (poverty_projects.status), kept for comparison only
SOURCE_PROJECT_STATUSES = (IN_PROGRESS, COMPLETED, OVERDUE)

# --- 党务公开 (app system 3): what a 党支部 discloses -> how many items a complete disclosure has -----
DISCLOSURE_ITEMS = {"党费收缴情况": 3, "组织生活开展情况": 3, "发展党员情况": 4, "民主评议党员结果": 3, "评先评优结果": 2}
DISCLOSURE_TYPES = tuple(DISCLOSURE_ITEMS)
# a disclosure's state on the logical date (gold fct_party_disclosure)
DISCLOSED_ON_TIME, DISCLOSED_LATE, DISCLOSURE_OVERDUE, DISCLOSURE_PENDING = "按时公开", "逾期公开", "逾期未公开", "待公开"
DISCLOSURE_STATES = (DISCLOSED_ON_TIME, DISCLOSED_LATE, DISCLOSURE_OVERDUE, DISCLOSURE_PENDING)

# --- 帮扶措施 and funding (政府帮扶为主，社会帮扶为辅) --------------------------------------------------
GOVERNMENT, SOCIAL = "政府帮扶", "社会帮扶"
FUNDING_CHANNELS = (GOVERNMENT, SOCIAL)
FUNDERS = {GOVERNMENT: ("财政专项资金", "行业部门资金", "东西部协作资金"), SOCIAL: ("企业捐助", "社会组织", "个人捐赠")}
# project category (app poverty_projects) -> the measures a project of that kind takes
MEASURE_TYPES = {"产业帮扶": ("产业扶持", "技术指导", "产销对接"), "教育帮扶": ("助学资助", "控辍保学"),
                 "医疗帮扶": ("医疗救助", "健康帮扶"), "住房保障": ("危房改造", "易地搬迁"),
                 "就业帮扶": ("技能培训", "就业推荐", "公益岗位"), "基础设施": ("道路修建", "饮水工程")}
OPEN_PROJECT_STATES = (IN_PROGRESS, DEADLINE_WARNING, OVERDUE)

# --- 解决疑难问题 (党建APP): members' questions and how they are answered ------------------------------
QUESTION_CATEGORIES = ("党费缴纳", "组织关系转接", "入党程序", "政策咨询", "学习平台使用")
ANSWERED_IN_TIME, ANSWERED_LATE, QUESTION_OVERDUE, QUESTION_OPEN = "按时解答", "超时解答", "超时未解答", "待解答"
QUESTION_STATES = (ANSWERED_IN_TIME, ANSWERED_LATE, QUESTION_OVERDUE, QUESTION_OPEN)

# --- 党员志愿服务超市: a published need's state on the logical date (gold fct_volunteer_need) -----------
NEED_OPEN, NEED_UNMATCHED, NEED_MATCHED, NEED_DONE = "待对接", "超时未对接", "已对接", "已完成"
NEED_STATES = (NEED_OPEN, NEED_UNMATCHED, NEED_MATCHED, NEED_DONE)

# --- models' labels ---------------------------------------------------------------------------------
# branch archetypes: dimension -> name; a cluster is named after the dimension its centre leads on
ARCHETYPES = {"diversity": "创新活跃型", "participation": "规范组织型", "volunteering": "志愿服务型",
              "digital": "线上学习型"}
LOW_ARCHETYPE = "活力待提升型"
BALANCED_ARCHETYPE = "均衡发展型"   # a cluster near the city's average on every profile
# integrity portrait evidence tags
INTEGRITY_TAGS = {"penalty": "行政处罚记录", "enforcement": "失信被执行人", "news": "负面舆情",
                  "complaints": "群众投诉较多", "overdue": "办件超期较多", "discipline": "纪律处分记录"}

# --- auto-flow (自流程化) rules: id -> the name users read --------------------------------------------
ALERT_RULES = {
    "learning_reminder": "学习问答未完成提醒",
    "learning_escalation": "学习问答连续未完成督办",
    "project_warning": "帮扶项目督办预警",
    "project_overdue": "帮扶项目逾期督办",
    "project_closure": "帮扶项目自动注销",
    "project_report": "帮扶项目信息报送",
    "village_reminder": "驻村每日工作记实提醒",
    "duty_record_reminder": "岗位责任工作记实补报提醒",
    "leadership_vacancy": "领导班子正职空缺预警",
    "disclosure_reminder": "党务公开逾期提醒",
    "disclosure_escalation": "党务公开逾期督办",
    "project_measure_missing": "帮扶项目无帮扶措施预警",
    "training_shortfall": "干部调训学时不足预警",
    "question_reminder": "党员疑难问题超时未解答提醒",
    "volunteer_match_reminder": "志愿服务需求超时未对接提醒",
}
ALERT_LEVELS = {"reminder": "提醒", "warning": "预警", "escalation": "督办", "closure": "注销", "report": "报送"}


def band_edges(bands) -> tuple[list[int], list[str]]:
    """(upper bounds, labels) of a band table such as :data:`AGE_BANDS`."""
    return [b for b, _ in bands if b is not None], [label for _, label in bands]


def rank_level(rank: str | None) -> str | None:
    """The level of a rank (``县处级正职`` -> ``县处级``), None for a rank below 科级 or unknown."""
    if not rank:
        return None
    for lv in LEVELS:
        if rank.startswith(lv):
            return lv
    return None


def level_of(name: str) -> str:
    """Canonical level for a configured name (``科级`` -> ``乡科级``); ValueError names the choices."""
    if name not in LEVEL_ALIASES:
        raise ValueError(f"unknown cadre level {name!r}: expected one of {sorted(LEVEL_ALIASES)}")
    return LEVEL_ALIASES[name]


def levels_from(min_level: str) -> tuple[str, ...]:
    """The levels at or above ``min_level`` (low to high)."""
    return LEVELS[LEVELS.index(level_of(min_level)):]


def sql_in(values) -> str:
    """A SQL ``in`` list of string literals: ``('男','女')``."""
    return "(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def dbt_vocab() -> dict:
    """The vocabulary dbt reads (``REDCLOUD_DBT_VOCAB``, JSON; see ``dbt_project/macros/vocab.sql``)."""
    return {"org_levels": list(ORG_LEVELS), "change_types": list(CHANGE_TYPES), "grades": list(GRADES),
            "project_states": list(PROJECT_STATES), "cadre_change_types": list(CADRE_CHANGE_TYPES),
            "disclosure_states": list(DISCLOSURE_STATES), "disclosure_types": list(DISCLOSURE_TYPES),
            "disclosed_on_time": DISCLOSED_ON_TIME, "disclosed_late": DISCLOSED_LATE,
            "disclosure_overdue": DISCLOSURE_OVERDUE, "disclosure_pending": DISCLOSURE_PENDING,
            "question_states": list(QUESTION_STATES), "need_states": list(NEED_STATES),
            "need_unmatched": NEED_UNMATCHED, "need_done": NEED_DONE, "need_matched": NEED_MATCHED, "need_open": NEED_OPEN, "answered_in_time": ANSWERED_IN_TIME,
            "answered_late": ANSWERED_LATE, "question_overdue": QUESTION_OVERDUE, "question_open": QUESTION_OPEN, "han": HAN, "on_roll": ON_ROLL,
            "age_bands": [list(b) for b in AGE_BANDS], "party_years_bands": [list(b) for b in PARTY_YEARS_BANDS]}
