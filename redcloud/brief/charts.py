"""Charts for the brief: matplotlib (Agg) with a CJK font, returned as PNG data URIs so the HTML
is one self-contained file (no external requests when opened or printed)."""

from __future__ import annotations

import base64
import io

import matplotlib

from redcloud.rules import vocab

matplotlib.use("Agg")
import matplotlib.pyplot as plt

FONT = "Noto Sans CJK SC"
RED = "#c0171d"
GREY = "#8a8a8a"

plt.rcParams.update({"font.family": [FONT, "sans-serif"], "axes.unicode_minus": False,
                     "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


def _uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def weekly_rates(learning: list[tuple], village: list[tuple], current_week_start) -> str | None:
    """Two weekly rate lines (学习问答作答率, 驻村日志填报率) over recent weeks; the current week marked."""
    if not learning and not village:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 2.1))
    for rows, label, color, style in ((learning, "学习问答作答率", RED, "-"), (village, "驻村日志填报率", GREY, "--")):
        if rows:
            xs = [r[0] for r in rows]
            ys = [float(r[1]) * 100 if r[1] is not None else None for r in rows]
            ax.plot(xs, ys, style, marker="o", ms=3, color=color, label=label)
    ax.axvline(current_week_start, color=RED, lw=0.6, alpha=0.4)
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower left", frameon=False, ncol=2)
    ax.set_title("近 12 周完成率（红线为本周）", loc="left", fontsize=10)
    fig.autofmt_xdate(rotation=0, ha="center")
    ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%m-%d"))
    return _uri(fig)


def projects_by_county(rows: list[tuple]) -> str | None:
    """Stacked horizontal bars: 帮扶 projects by county and status at the week's end."""
    if not rows:
        return None
    rows = list(reversed(rows))
    names = [r[0].replace("中共贵阳市", "").replace("委员会", "") for r in rows]
    # columns: county, then one count per lifecycle state in vocabulary order
    counts = {state: [int(r[1 + i]) for r in rows] for i, state in enumerate(vocab.PROJECT_STATES)}
    order = [vocab.OVERDUE, vocab.DEADLINE_WARNING, vocab.IN_PROGRESS, vocab.EXPIRED, vocab.COMPLETED]
    colors = {vocab.OVERDUE: RED, vocab.DEADLINE_WARNING: "#e8a33d", vocab.IN_PROGRESS: "#f3d27a",
              vocab.EXPIRED: "#8c8c8c", vocab.COMPLETED: "#cfcfcf"}
    fig, ax = plt.subplots(figsize=(7.2, 0.22 * len(rows) + 0.8))
    left = [0] * len(rows)
    for state in order:
        ax.barh(names, counts[state], left=left, color=colors[state], label=state)
        left = [a + b for a, b in zip(left, counts[state])]
    for y, v in enumerate(counts[vocab.OVERDUE]):
        if v:
            ax.text(v / 2, y, str(v), va="center", ha="center", color="white", fontsize=7)
    ax.legend(loc="lower right", frameon=False, ncol=5, fontsize=8)
    ax.set_title("帮扶项目状态（按区县，截至本周日）", loc="left", fontsize=10)
    ax.set_xlabel("项目数")
    return _uri(fig)
