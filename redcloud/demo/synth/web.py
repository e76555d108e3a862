"""Web reference data: administrative penalty notices, enforcement lists (失信被执行人) and news pages.

Public notices show masked 身份证号 (first 6 and last 4 characters). Cadres with a planted
integrity issue are likelier to appear; so are strangers who share a cadre's name (ambiguity).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redcloud.demo.synth import identity
from redcloud.demo.synth.orgs import COUNTIES
from redcloud.demo.synth.people import People

D = np.timedelta64(1, "D")
PENALTY_REASONS = ["违规占用耕地", "未按规定办理环评手续", "违法建设", "偷逃税款", "违规发放补贴", "违反财经纪律"]
COURTS = [f"贵阳市{c[0]}人民法院" for c in COUNTIES]
POSITIVE = ["{name}同志获评优秀共产党员", "{org}扎实推进基层治理，{name}带头服务群众", "{name}：扎根一线的好干部"]
NEGATIVE = ["关于{name}违反中央八项规定精神问题的通报", "{org}{name}因工作失职被问责", "群众反映{name}办事拖延问题调查"]


def build(rng: np.random.Generator, orgs: pd.DataFrame, p: People, start: np.datetime64, end: np.datetime64):
    cl, cadres, members = p.cadre_latent, p.cadres, p.members
    period = int((end - start) / D)
    county_of = dict(zip(orgs.region_code, orgs.org_name))
    names = cadres.cadre_name.to_numpy()
    idn = members.id_number.to_numpy()[cl.member_id.to_numpy() - 1]
    region = orgs.set_index("org_id").region_code.reindex(cadres.unit_org_id).to_numpy()
    integ = cl.integrity_issue.to_numpy()
    comp = cl.competence.to_numpy()
    unit_name = orgs.set_index("org_id").org_name.reindex(cadres.unit_org_id).to_numpy()
    links = []

    def people_rows(p_hit, n_noise, kind):
        hit = np.flatnonzero(rng.random(len(cl)) < p_hit)
        # strangers: some share a cadre's name (and county) exactly -> ambiguity for identity fusion
        twin = rng.random(n_noise) < 0.3
        src = rng.integers(0, len(cl), n_noise)
        g = np.where(rng.random(n_noise) < 0.6, "男", "女")
        birth = np.datetime64("1960-01-01") + rng.integers(0, 40 * 365, n_noise) * D
        s_names = np.where(twin, names[src], identity.names(rng, g, birth))
        s_region = np.where(twin, region[src], np.array([c[1] for c in COUNTIES])[rng.integers(0, len(COUNTIES), n_noise)])
        s_ids = identity.id_numbers(rng, s_region, birth, g)
        rows = pd.DataFrame(dict(person_name=np.concatenate([names[hit], s_names]),
                                 id_number=np.concatenate([idn[hit], s_ids]),
                                 region_code=np.concatenate([region[hit], s_region]),
                                 cadre_id=np.concatenate([cl.cadre_id.to_numpy()[hit], np.full(n_noise, -1)])))
        rows["kind"] = kind
        return rows

    n_noise = max(20, len(cl) // 8)
    onset = cl.integrity_onset.to_numpy().astype("datetime64[D]")
    cadre_row = dict(zip(cl.cadre_id.to_numpy(), range(len(cl))))

    def dated(rows: pd.DataFrame, col: str) -> pd.DataFrame:
        """A record of a cadre with a problem comes 1 to 24 months after its onset (kept only when that
        falls inside the period); every other record on a random day of the period."""
        i = np.array([cadre_row.get(c, -1) for c in rows.cadre_id])
        has = (i >= 0) & integ[np.maximum(i, 0)]
        after = onset[np.maximum(i, 0)] + rng.integers(30, 730, len(rows)) * D
        d = np.where(has, after, start + rng.integers(0, period, len(rows)) * D)
        rows[col] = d
        return rows[(d >= start) & (d <= end)].reset_index(drop=True)

    pen = dated(people_rows(np.where(integ, 0.55, 0.004), n_noise, "penalty"), "decision_date")
    pen["notice_id"] = [f"CF{i:07d}" for i in range(1, len(pen) + 1)]
    penalties = pd.DataFrame(dict(
        notice_id=pen.notice_id, title=[f"行政处罚决定书（{i}）" for i in pen.notice_id], party_name=pen.person_name,
        party_id_masked=identity.mask_id(pen.id_number.to_numpy()),
        region=[county_of.get(r, "贵阳市") for r in pen.region_code],
        reason=np.array(PENALTY_REASONS)[rng.integers(0, len(PENALTY_REASONS), len(pen))],
        amount_yuan=np.round(rng.lognormal(8.5, 1.0, len(pen)), -1),
        authority=np.array(["市场监督管理局", "自然资源局", "税务局", "生态环境局"])[rng.integers(0, 4, len(pen))],
        decision_date=pen.decision_date.astype(str)))

    enf = dated(people_rows(np.where(integ, 0.3, 0.002), n_noise, "enforcement"), "publish_date")
    enf["case_no"] = [f"（{2023 + i % 3}）黔0102执{i:05d}号" for i in range(1, len(enf) + 1)]
    enforcement = pd.DataFrame(dict(
        case_no=enf.case_no, name=enf.person_name, id_masked=identity.mask_id(enf.id_number.to_numpy()),
        court=np.array(COURTS)[rng.integers(0, len(COURTS), len(enf))],
        obligation=np.array(["偿还借款本金及利息", "支付工程款", "赔偿损失"])[rng.integers(0, 3, len(enf))],
        amount_yuan=np.round(rng.lognormal(11, 1.0, len(enf)), -2),
        publish_date=enf.publish_date.astype(str)))

    # news: negative mentions for integrity problems (after the onset), and - bad press is not proof - for
    # a few cadres without one; positive ones for strong performers
    neg = np.flatnonzero((integ & (rng.random(len(cl)) < 0.5)) | (~integ & (rng.random(len(cl)) < 0.015)))
    pos = np.flatnonzero((comp > 1.3) & (rng.random(len(cl)) < 0.25))
    news_rows = []
    for kind, idx, tmpl in (("negative", neg, NEGATIVE), ("positive", pos, POSITIVE)):
        for i in idx:
            t = tmpl[rng.integers(0, len(tmpl))].format(name=names[i], org=unit_name[i].replace("委员会", ""))
            d = start + int(rng.integers(0, period)) * D
            if kind == "negative" and integ[i]:
                d = onset[i] + int(rng.integers(30, 730)) * D
                if not start <= d <= end:
                    continue
            body = (f"{str(d)}，{unit_name[i].replace('委员会', '')}{names[i]}同志"
                    + ("存在违规问题，已被立案调查并严肃处理。" if kind == "negative" else "扎根基层、服务群众，受到广泛好评。"))
            news_rows.append(dict(title=t, published_date=str(d), body=body, tone=kind, cadre_id=int(cl.cadre_id.iat[i])))
    news = pd.DataFrame(news_rows)
    if len(news):
        news = news.sort_values(["published_date", "cadre_id"], kind="stable").reset_index(drop=True)
    news.insert(0, "news_id", [f"XW{i:06d}" for i in range(1, len(news) + 1)])

    links = pd.concat([
        pd.DataFrame(dict(source="web_penalty", source_key=pen.notice_id, cadre_id=pen.cadre_id)),
        pd.DataFrame(dict(source="web_enforcement", source_key=enf.case_no, cadre_id=enf.cadre_id)),
        pd.DataFrame(dict(source="web_news", source_key=news.news_id, cadre_id=news.get("cadre_id", pd.Series(dtype=int)))),
    ], ignore_index=True)
    return penalties, enforcement, news.drop(columns=["tone", "cadre_id"], errors="ignore"), news, links
