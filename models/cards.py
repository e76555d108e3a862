"""Model cards that stay true: the evaluation section of each ``MODEL_CARD.md`` is generated from the
registered version's MLflow run, and the whole card is the version's description in MLflow.

The hand-written parts of a card (what the model predicts, its features, its limits) stay as they are;
the part between ``<!-- generated:start -->`` and ``<!-- generated:end -->`` is replaced. The promote
step publishes the card as the new champion's description; ``redcloud cards`` also rewrites the files.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from models.common import Env

START, END = "<!-- generated:start -->", "<!-- generated:end -->"
ROOT = Path(__file__).resolve().parent

# model -> (baselines artifact, metric column, metric's 中文 name)
BASELINES = {
    "cadre_evaluation": ("baselines/heldout_qwk.json", "qwk", "测试年 QWK（二次加权 kappa）"),
    "integrity_portrait": ("baselines/heldout_auc.json", "auc", "后一年窗口 AUC（预测，样本外）"),
    "member_vitality": ("baselines/heldout_predictive_spearman.json", "predictive_spearman",
                        "留出月份失活率的 Spearman 预测效度"),
}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _table(rows: list[list], head: list[str]) -> list[str]:
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows])


def generated(env: Env, key: str, version=None) -> str:
    """The generated section for ``version`` (default: the champion) of model ``key``."""
    c = env.client()
    mv = version or env.champion(key)
    if mv is None:
        return f"{START}\n_No registered champion yet: train the model first._\n{END}"
    run = c.get_run(mv.run_id)
    metrics, params, tags = run.data.metrics, run.data.params, {**run.data.tags, **(mv.tags or {})}
    lines = [START, "## Evaluation of the registered version (generated; do not edit by hand)", "",
             f"Registered model `{env.registered_name(key)}` version **{mv.version}** "
             f"(aliases: {', '.join(mv.aliases or []) or 'none'}), MLflow run `{mv.run_id}`, "
             f"logical date {params.get('as_of_date') or tags.get('promoted_on') or env.day.isoformat()}.", ""]
    if "served_method" in tags:
        lines += [f"**Served method: `{tags['served_method']}`.** Rule: a more complex method is served only "
                  f"when its held-out score beats the simpler ones by more than "
                  f"{params.get('baseline_margin', env.cfg.baseline_margin)} (`[models] baseline_margin`); "
                  f"then it must beat the champion (`[models] min_gain`).", "",
                  f"Why: {tags.get('served_reason', '')}", ""]
    if key in BASELINES:
        path, col, label = BASELINES[key]
        try:
            with tempfile.TemporaryDirectory() as d:
                t = json.loads(Path(c.download_artifacts(mv.run_id, path, d)).read_text(encoding="utf-8"))
            rows = [dict(zip(t["columns"], r)) for r in t["data"]]
        except Exception:  # noqa: BLE001 - a version trained before baselines existed
            rows = []
        if rows:
            lines += [f"Held-out comparison, same rows for every method ({label}; 90 % bootstrap interval):", ""]
            lines += _table([[r["label"], r[col], f"{r['ci_lo']:.3f} – {r['ci_hi']:.3f}",
                              "yes" if r["servable"] else "no (reference rule)"] for r in rows],
                            ["method", col, "interval", "servable"])
            lines.append("")
    truth = {k: v for k, v in metrics.items() if k.startswith("truth_")}
    if truth:
        lines += ["Against the planted truth of the synthetic city (validation only; never a feature, never "
                  "used to choose):", ""]
        lines += _table([[k.removeprefix("truth_"), v] for k, v in sorted(truth.items())], ["measure", "value"])
        lines.append("")
    other = {k: v for k, v in metrics.items() if not k.startswith("truth_") and "_ci_" not in k}
    lines += ["All metrics of the run:", ""]
    lines += _table([[k, v] for k, v in sorted(other.items())], ["metric", "value"])
    lines += ["", END]
    return "\n".join(lines)


def render(env: Env, key: str, version=None, template: str | None = None) -> str:
    """The whole card: the hand-written file with its generated section replaced (or appended)."""
    text = template if template is not None else (ROOT / key / "MODEL_CARD.md").read_text(encoding="utf-8")
    gen = generated(env, key, version)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        return head + gen + rest.split(END, 1)[1]
    return text.rstrip() + "\n\n" + gen + "\n"


def publish(env: Env, key: str, write_file: bool = False) -> str | None:
    """Set the champion's description to its card (and, with ``write_file``, rewrite MODEL_CARD.md)."""
    mv = env.champion(key)
    if mv is None:
        return None
    card = render(env, key, mv)
    env.client().update_model_version(env.registered_name(key), mv.version, description=card)
    if write_file:
        (ROOT / key / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return card
