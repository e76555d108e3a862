"""The stages of the main job, declared once, in order.

The CLI (``redcloud run <stage>``), the Airflow DAGs and the benchmarks all read :data:`STAGES`.
This module uses the standard library only, so the Airflow virtualenv can load it by path without
the pipeline's dependencies (``dags/_common.py``).

A stage either runs one function, ``entry`` (``"module:function"``, called with a
:class:`redcloud.context.RunContext` and returning a dict with a ``tables`` list), or is made of
``parts``, other stages run in order (each can also run alone, e.g. one source kind of bronze or
one step of the model lifecycle). ``gate`` names the lake layer whose quality gate ends the stage:
the layer's tables are validated before anything downstream runs, and restored to their previous
Delta versions when the gate fails (write-audit-publish).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    title: str                      # Chinese, shown to people (Airflow, progress)
    summary: str                    # English, one line
    entry: str = ""                 # "module:function" taking a RunContext
    parts: tuple[str, ...] = ()     # or: these stages, in order
    gate: str = ""                  # lake layer validated (and restored on failure) at the end
    retries: int = 0                # Airflow retries (sources fail transiently; gates never do)


PARTS: tuple[Stage, ...] = (
    Stage("bronze_orgdb", "组织数据库采集", "incremental extract of the organisation databases into bronze",
          entry="redcloud.stages.bronze_orgdb:run", retries=3),
    Stage("bronze_ironcage", "数据铁笼导出文件采集", "数据铁笼 export files from the landing folder into bronze",
          entry="redcloud.stages.bronze_ironcage:run", retries=3),
    Stage("bronze_web", "互联网参考数据采集", "web reference data (penalties, enforcement, news) into bronze",
          entry="redcloud.stages.bronze_web:run", retries=3),
    Stage("models_train", "模型训练", "train a challenger for each model that needs one (MLflow run)",
          entry="redcloud.stages.models:train"),
    Stage("models_validate", "模型验证", "validate each challenger against the champion and the simple baselines",
          entry="redcloud.stages.models:validate"),
    Stage("models_promote", "模型发布", "move the champion alias to each validated challenger",
          entry="redcloud.stages.models:promote"),
    Stage("models_score", "模型评分", "batch-score the city with each champion into gold",
          entry="redcloud.stages.models:score"),
)

STAGES: tuple[Stage, ...] = (
    Stage("bronze", "采集入湖", "every source into bronze, with load metadata",
          parts=("bronze_orgdb", "bronze_ironcage", "bronze_web"), retries=3),
    Stage("silver", "清洗整合", "bronze -> silver: typed, deduplicated, pseudonymised, history, identity",
          entry="redcloud.stages.silver:run", gate="silver"),
    Stage("gold", "事实与维度", "silver -> gold: dimensions, facts and every rule's verdict",
          entry="redcloud.stages.gold:run", gate="gold"),
    Stage("models", "分析模型", "the N models: train, validate, promote, score",
          parts=("models_train", "models_validate", "models_promote", "models_score")),
    Stage("marts", "数据集市", "dbt build of the marts over gold", entry="redcloud.marts:run"),
    Stage("alerts", "自流程化提醒", "reminders, warnings and escalations from gold; outbox delivery",
          entry="redcloud.alerts:run"),
    Stage("publish", "发布服务快照", "gold and marts as one consistent serving snapshot",
          entry="redcloud.serving.publish:run"),
    Stage("brief", "每周决策参考", "the weekly decision brief from the published snapshot",
          entry="redcloud.brief:run"),
)

BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES + PARTS}
NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def get(name: str) -> Stage:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(BY_NAME)} or all") from None


def leaves(name: str) -> list[Stage]:
    """The stages that run for ``name``, parts expanded, in order."""
    st = get(name)
    return [leaf for p in st.parts for leaf in leaves(p)] if st.parts else [st]
