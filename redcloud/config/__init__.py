"""One typed configuration for every part of redcloud.

Sources, later ones winning: the packaged ``default.toml``; the file named by
``REDCLOUD_CONFIG``; ``.run/secrets.env`` (generated at set-up); environment
variables ``REDCLOUD_<SECTION>__<KEY>``.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from redcloud.rules import Rules

PROJECT_ROOT = Path(os.environ.get("REDCLOUD_HOME", Path(__file__).resolve().parents[2]))
DEFAULT_FILE = Path(__file__).with_name("default.toml")


def _resolve(p: str) -> str:
    """Resolve a relative path against the project root; leave URIs alone."""
    if "://" in p:
        return p
    path = Path(p)
    return str(path if path.is_absolute() else PROJECT_ROOT / path)


class PathsConfig(BaseModel):
    run_dir: str
    lake_root: str
    landing_dir: str
    synth_dir: str
    jars_dir: str

    def model_post_init(self, _ctx: Any) -> None:
        for name in type(self).model_fields:
            setattr(self, name, _resolve(getattr(self, name)))


class SparkConfig(BaseModel):
    master: str = "local[2]"
    app_name: str = "redcloud"
    driver_memory: str = "4g"
    shuffle_partitions: int = 4
    table_threads: int = 2       # tables of one stage written side by side (small tables wait on Delta commits, not CPU)
    extra: dict[str, str] = Field(default_factory=dict)
    connect_port: int = 15002    # the warm engine's port (redcloud.services.spark_connect), on 127.0.0.1
    remote: str = ""             # a Spark Connect URL (sc://host:port): use that server instead of a JVM of our own


class PostgresConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 54329
    user: str = "redcloud"
    password: SecretStr | None = None
    data_dir: str = ".run/pg"

    def model_post_init(self, _ctx: Any) -> None:
        self.data_dir = _resolve(self.data_dir)

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}:{self._password()}@{self.host}:{self.port}/{database}"

    def _password(self) -> str:
        if self.password is None:
            raise RuntimeError(
                "PostgreSQL password missing: run `make setup` (writes .run/secrets.env) "
                "or set REDCLOUD_POSTGRES__PASSWORD"
            )
        return self.password.get_secret_value()


class SourcesConfig(BaseModel):
    org_url: str
    cadre_url: str
    app_url: str
    web_base_url: str
    jdbc_row_threshold: int = 50000
    web_article_recheck_days: int = 7   # a known news article is asked again on one day in n (1: daily)


class WebConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 18080
    fault_rate: float = 0.05
    slow_rate: float = 0.05
    slow_seconds: float = 1.5


class SynthConfig(BaseModel):
    scale: int = 10000
    seed: int = 20251231
    start: str = "2023-01-01"
    end: str = "2025-12-31"


class MlflowConfig(BaseModel):
    tracking_uri: str
    artifact_root: str
    ui_host: str = "127.0.0.1"
    ui_port: int = 15000

    def model_post_init(self, _ctx: Any) -> None:
        if self.tracking_uri.startswith("sqlite:///") and not self.tracking_uri.startswith("sqlite:////"):
            self.tracking_uri = "sqlite:///" + _resolve(self.tracking_uri[len("sqlite:///"):])
        self.artifact_root = _resolve(self.artifact_root)


class ServingConfig(BaseModel):
    target: str = "duckdb"            # duckdb | postgres
    duckdb_dir: str = ".run/serving"
    keep_snapshots: int = 5
    pin: str = ""                     # a snapshot id: readers are pointed at it (roll back); "" = latest
    postgres_database: str = "serving"  # target = postgres: database holding serving_<id> schemas

    def model_post_init(self, _ctx: Any) -> None:
        self.duckdb_dir = _resolve(self.duckdb_dir)


class DbtConfig(BaseModel):
    """dbt marts (issue: dbt marts). Owned by redcloud/marts.py."""
    project_dir: str = "dbt_project"
    target: str = "session"          # session (in-process Spark) | thrift (a Spark Thrift server / cluster)
    threads: int = 2                 # models and tests run side by side (one Spark session, separate temp views)

    def model_post_init(self, _ctx: Any) -> None:
        self.project_dir = _resolve(self.project_dir)


class ModelsConfig(BaseModel):
    """The N models (models/). ``retrain``: auto (train when no champion), always, never."""
    retrain: str = "auto"
    seed: int = 7
    min_gain: float = 0.0                    # validation: a candidate must beat the champion's held-out metric by more
    baseline_margin: float = 0.01            # serve a more complex method only when it beats the simpler by more
    name_prefix: str = "redcloud"
    truth_dir: str = ""                      # planted truth (synthetic city): validation only, never a feature
    cadre_test_year: int = 0                 # 0: latest graded year is the held-out test year
    integrity_flag_threshold: float = 0.5    # gate: calibrated probability >= this and >= 1 evidence-backed tag
    integrity_complaints_tag_min: int = 3
    integrity_complaint_rate_tag: float = 0.10
    integrity_overdue_tag_min: int = 6
    integrity_overdue_rate_tag: float = 0.30
    vitality_ahp_alpha: float = 0.5
    vitality_ahp_matrix: list[list[float]] = Field(default_factory=list)
    vitality_ahp_max_cr: float = 0.1
    branch_k_range: list[int] = Field(default_factory=lambda: [3, 6])
    branch_forest_top_share: float = 0.025   # meetings in the top share of training isolation scores are unusual
    fairness_max_gap: float = 0.10           # cadre model: a group's accuracy this far below all cadres' is flagged
    fairness_min_group: int = 30             # ... for groups of at least this many cadres in the held-out year


class ApiConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 18000
    # jwt_secret: generated at set-up into .run/secrets.env (REDCLOUD_API__JWT_SECRET)
    jwt_secret: SecretStr | None = None
    token_ttl_hours: int = 24
    max_token_hours: int = 168        # a token whose exp - iat is longer is refused
    key_ttl_days: int = 365
    keys_file: str = ""               # API keys (hashed); "" = <run_dir>/api/keys.json
    revoked_file: str = ""            # revoked tokens and subjects; "" = <run_dir>/api/revoked.json
    audit_log: str = ""               # append-only JSON lines; "" = <run_dir>/audit/api_access.jsonl
    inbox_acks: str = ""              # the app's acknowledgements (append-only); "" = <run_dir>/api/inbox_acks.jsonl
    default_page_size: int = 50
    max_page_size: int = 500
    workers: int = 2                  # uvicorn worker processes, each with the snapshot opened read-only
    row_cache_size: int = 50000       # point reads remembered per snapshot and worker (0: none)


class AirflowConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 18081
    admin_user: str = "admin"
    # admin_password: generated at set-up (REDCLOUD_AIRFLOW__ADMIN_PASSWORD)
    admin_password: SecretStr | None = None
    home: str = ".run/airflow"
    database: str = "airflow"          # metadata database on the project's PostgreSQL ([postgres])
    parallelism: int = 3               # AIRFLOW__CORE__PARALLELISM: task slots of the LocalExecutor
    end_date: str = ""                 # last logical date DAGs schedule (YYYY-MM-DD; empty: none)
    dag_refresh_seconds: int = 30      # how often the dag-processor re-lists and re-parses dags/
    notify: str = "log+email"          # failure notification channels: log | log+email
    notify_to: str = "data-team@localhost"   # who gets task-failure e-mails (via [smtp])
    unpause: list[str] = Field(default_factory=list)   # DAG ids the start unpauses (all start paused)

    def model_post_init(self, _ctx: Any) -> None:
        self.home = _resolve(self.home)


class SupersetConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 18088
    admin_user: str = "admin"
    # admin_password, secret_key: generated at set-up (REDCLOUD_SUPERSET__ADMIN_PASSWORD / __SECRET_KEY)
    admin_password: SecretStr | None = None
    secret_key: SecretStr | None = None
    home: str = ".run/superset"
    venv: str = ".run/venv/superset"   # Superset's own virtualenv (never the pipeline's)
    metadata_db: str = "superset"      # PostgreSQL database on [postgres]; "sqlite" = <home>/superset.db
    workers: int = 2                   # gunicorn workers (gthread, 4 threads each)
    start_timeout: float = 300
    county: str = ""                   # county of the demo county user; empty = first in dim_organization
    county_user: str = "county_analyst"
    # county_password: optional; by default derived from secret_key (see redcloud.services.superset)
    county_password: SecretStr | None = None

    def model_post_init(self, _ctx: Any) -> None:
        self.home = _resolve(self.home)
        self.venv = _resolve(self.venv)


class SmtpConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 18025
    sender: str = "redcloud@localhost"
    party_office: str = "dangjianban@localhost"   # 市委党建办
    timeout: float = 10.0
    mail_dir: str = ""                 # where the local SMTP sink stores .eml files; "" = <run_dir>/mail


class QualityConfig(BaseModel):
    # "batch": silver's row-level expectations check the rows the date committed, uniqueness and row
    # counts the whole table (a rule changed in a suite needs one run with "table" to recheck old rows)
    silver_scope: Literal["batch", "table"] = "batch"


class AlertsConfig(BaseModel):
    """自流程化 delivery (redcloud/alerts); the rules themselves are ``[rules]`` (redcloud/rules)."""
    closure_lookback_days: int = 7     # announce a closing (自动注销) while it is at most this old
    project_report: bool = True        # 信息报送: a daily summary to 市委党建办
    head_lookback_days: int = 365      # 书记 = most frequent meeting host in this window
    mail_domain: str = "redcloud.invalid"   # cadre-<id>@, member-<id>@, org-<id>@ (sources have no e-mail)
    deliver: bool = True               # send the outbox by SMTP at the end of the stage
    send_batch: int = 50               # mark sent in the outbox after this many accepted messages
    max_attempts: int = 5              # give up on a message after this many failed sends
    retry_backoff_minutes: float = 5.0   # a failed message waits this x 2^(attempts-1) minutes before the next try
    same_day_reminder_hour: int = 16   # micro-batches from this hour on send the day's 学习问答 and 驻村 reminders


class BriefConfig(BaseModel):
    """每周决策参考 (redcloud/brief)."""
    out_dir: str = ".run/briefs"
    week: str = ""                        # e.g. "2025-W50"; empty: the ISO week ended by the run's date
    pdf: bool = True                      # print the PDF with headless Chromium
    top_n: int = 5                        # rows in each list of the brief
    village_record_rate_min: float = 0.8  # 驻村日志填报率 below this becomes a decision item
    learning_rate_drop_pts: float = 3.0   # week-over-week drop (percentage points) that becomes one

    def model_post_init(self, _ctx: Any) -> None:
        self.out_dir = _resolve(self.out_dir)


class SecretsConfig(BaseModel):
    pseudonym_key: SecretStr | None = None

    def pseudonym_key_bytes(self) -> bytes:
        if self.pseudonym_key is None:
            raise RuntimeError(
                "pseudonym key missing: run `make setup` (writes .run/secrets.env) "
                "or set REDCLOUD_SECRETS__PSEUDONYM_KEY"
            )
        return self.pseudonym_key.get_secret_value().encode()


class _TomlFiles(PydanticBaseSettingsSource):
    """Default file, then the REDCLOUD_CONFIG file, merged section by section."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        files = [DEFAULT_FILE]
        if os.environ.get("REDCLOUD_CONFIG"):
            files.append(Path(os.environ["REDCLOUD_CONFIG"]))
        for f in files:
            with open(f, "rb") as fh:
                for section, values in tomllib.load(fh).items():
                    data.setdefault(section, {}).update(values)
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REDCLOUD_",
        env_nested_delimiter="__",
        env_file=str(PROJECT_ROOT / ".run" / "secrets.env"),
        extra="ignore",
    )

    paths: PathsConfig
    spark: SparkConfig
    postgres: PostgresConfig
    sources: SourcesConfig
    web: WebConfig
    synth: SynthConfig
    mlflow: MlflowConfig
    serving: ServingConfig
    dbt: DbtConfig = Field(default_factory=DbtConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    airflow: AirflowConfig = Field(default_factory=AirflowConfig)
    superset: SupersetConfig = Field(default_factory=SupersetConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    rules: Rules
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    brief: BriefConfig = Field(default_factory=BriefConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, dotenv_settings, _TomlFiles(settings_cls))

    def model_post_init(self, _ctx: Any) -> None:
        if not self.sources.web_base_url:  # default: the project's own web reference server
            self.sources.web_base_url = f"http://{self.web.host}:{self.web.port}"

    def source_url(self, system: str) -> str:
        """SQLAlchemy URL of one organisation system: ``org``, ``cadre`` or ``app``."""
        template = getattr(self.sources, f"{system}_url")
        pg = self.postgres
        return template.format(user=pg.user, password=pg._password(), host=pg.host, port=pg.port)

    def web_base_url(self) -> str:
        return self.sources.web_base_url

    def replace(self, **sections: dict) -> "Settings":
        """A copy with some keys of some sections changed, e.g. ``replace(paths={"lake_root": p},
        rules={"project_warning_days": 7})``, validated like the configuration (paths resolved). Only
        what is given changes: no file or environment variable is read again."""
        data = {name: {k: (v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in section}
                for name, section in self}
        for name, values in sections.items():
            data[name] = {**data[name], **values}
        return _FromData(**data)


class _FromData(Settings):
    """Settings built from the given data only (see :meth:`Settings.replace`)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings,)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
