"""Behaviour recorded by the platform's apps: learning, meetings, dues, volunteering, village work, 帮扶."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from redcloud import workdays
from redcloud.demo.synth.people import People, sigmoid, stamp

D = np.timedelta64(1, "D")
NOVEL_TYPES = ["联学共建", "红色教育实践", "专题研讨", "数字党建实践", "党员志愿服务日", "微党课比赛"]
VOLUNTEER_CATEGORIES = ["社区服务", "助老助残", "环境保护", "文明交通", "政策宣讲", "帮扶慰问"]
PROJECT_CATEGORIES = ["产业帮扶", "教育帮扶", "医疗帮扶", "住房保障", "就业帮扶", "基础设施"]
WORK_TEMPLATES = ["走访农户{n}户，了解生产生活情况", "召开村两委会议，研究{t}工作", "协调解决{t}问题",
                  "开展政策宣讲，参与群众{n}人", "督促帮扶项目进度，现场查看{t}", "组织村民开展{t}培训"]
WORK_TOPICS = ["产业发展", "饮水安全", "道路硬化", "危房改造", "合作社", "电商销售", "医疗保障", "就业务工"]


@dataclass
class Behaviour:
    app_users: pd.DataFrame
    app_activity: pd.DataFrame
    learning_answers: pd.DataFrame
    meetings: pd.DataFrame
    attendance: pd.DataFrame
    dues: pd.DataFrame
    volunteer: pd.DataFrame
    village_work: pd.DataFrame
    projects: pd.DataFrame
    # truth
    vitality_truth: pd.DataFrame
    branch_truth: pd.DataFrame
    fabricated: pd.DataFrame


def month_starts(start: np.datetime64, end: np.datetime64) -> np.ndarray:
    return np.arange(start.astype("datetime64[M]"), end.astype("datetime64[M]") + 1)


def build(rng: np.random.Generator, p: People, start: np.datetime64, end: np.datetime64) -> Behaviour:
    members, ml = p.members, p.member_latent
    n = len(members)
    months = month_starts(start, end)
    T = len(months)
    m_lo = months.astype("datetime64[D]")
    m_hi = (months + 1).astype("datetime64[D]") - D
    days, wmask = workdays.workday_mask(start.astype(object), end.astype(object))
    hol = workdays.holiday_mask(days)
    wd_by_month = [days[wmask & (days >= m_lo[t]) & (days <= m_hi[t])] for t in range(T)]
    nonwork_by_month = [days[(~wmask) & (days >= m_lo[t]) & (days <= m_hi[t])] for t in range(T)]
    hol_by_month = [days[hol & (days >= m_lo[t]) & (days <= m_hi[t])] for t in range(T)]

    # innovative branches: a minority, more likely where the branch is diligent
    bl = p.branch_latent
    nb = len(bl)
    innovative = rng.random(nb) < 0.25 * sigmoid(bl.diligence.to_numpy() - 0.5)
    fabricates = (~innovative) & (rng.random(nb) < 0.16 * sigmoid(-bl.diligence.to_numpy() - 0.5))
    b_eff = bl.diligence.to_numpy()

    # monthly latent vitality (AR(1) around the member's base level)
    mb = ml.branch_idx.to_numpy()
    v_base = ml.v_base.to_numpy() + 0.3 * innovative[mb]
    u = np.zeros(n)
    v = np.empty((n, T), dtype=np.float32)
    for t in range(T):
        u = 0.6 * u + 0.35 * rng.normal(0, 1, n)
        v[:, t] = 0.85 * v_base + u
    af = ml.active_from.to_numpy().astype("datetime64[D]")
    at = ml.active_to.to_numpy().astype("datetime64[D]")
    active = (af[:, None] <= m_hi[None, :]) & (np.isnat(at)[:, None] | (at[:, None] >= m_lo[None, :]))
    mi, ti = np.nonzero(active)
    vt = v[mi, ti]
    member_id = members.member_id.to_numpy()
    vitality_truth = pd.DataFrame(dict(member_id=member_id[mi], month=m_lo[ti], latent_vitality=vt))

    # --- app users and monthly activity -------------------------------------------------
    reg = np.minimum(np.maximum(af, start - 700 * D) + rng.integers(0, 200, n) * D, end)
    app_users = pd.DataFrame(dict(member_id=member_id, account=np.char.add("u", member_id.astype(str)),
                                  registered_at=stamp(rng, reg), updated_at=stamp(rng, reg)))
    nwd = np.array([len(w) for w in wd_by_month])[ti]
    # app use is only partly vitality: members differ in how much they use a phone app at all (older
    # members less - a confounder) and in how many points a session earns them (habits, quiz-chasing)
    age = (m_lo[0] - members.birth_date.to_numpy().astype("datetime64[D]")).astype(int) / 365.25
    affinity = rng.normal(0, 0.7, n) - 0.02 * (np.nan_to_num(age, nan=45.0) - 45)
    pts_rate = rng.lognormal(0, 0.45, n)
    login = rng.binomial(nwd, sigmoid(0.7 * vt + affinity[mi] - 0.2))
    app_activity = pd.DataFrame(dict(
        member_id=member_id[mi], activity_month=m_lo[ti], login_days=login,
        learning_days=rng.binomial(login, sigmoid(0.6 * vt + 0.3)),
        learning_points=rng.poisson(login * 4.0 * pts_rate[mi] * sigmoid(0.8 * vt) + 0.5),
        articles_read=rng.poisson(login * 1.5 + 0.2),
        updated_at=stamp(rng, m_hi[ti]),
    ))
    app_activity.insert(0, "activity_id", np.arange(1, len(app_activity) + 1))

    # --- dues -------------------------------------------------------------------------
    amount = np.array([0.2, 1.0, 5.0, 12.0, 30.0, 60.0])[rng.choice(6, n, p=[0.2, 0.2, 0.25, 0.2, 0.1, 0.05])]
    unpaid = rng.random(len(mi)) < sigmoid(-4.5 - 1.5 * vt)
    ontime = rng.random(len(mi)) < sigmoid(1.8 + 1.3 * vt)
    paid = np.where(ontime, m_lo[ti] + rng.integers(0, 25, len(mi)) * D, m_hi[ti] + rng.integers(5, 60, len(mi)) * D)
    paid = np.where(unpaid | (paid > end), np.datetime64("NaT"), paid)
    dues = pd.DataFrame(dict(member_id=member_id[mi], dues_month=m_lo[ti], amount_due=amount[mi],
                             amount_paid=np.where(np.isnat(paid), 0.0, amount[mi]), paid_date=paid,
                             updated_at=stamp(rng, np.where(np.isnat(paid), m_hi[ti], paid))))
    dues.insert(0, "dues_id", np.arange(1, len(dues) + 1))

    # --- volunteer service ------------------------------------------------------------
    k = rng.poisson(0.25 * np.exp(0.7 * vt))
    vi = np.repeat(np.arange(len(mi)), k)
    vdate = m_lo[ti[vi]] + (rng.random(len(vi)) * ((m_hi - m_lo)[ti[vi]] / D + 1)).astype(int) * D
    volunteer = pd.DataFrame(dict(member_id=member_id[mi[vi]], service_date=vdate,
                                  hours=np.array([1.0, 2.0, 2.0, 3.0, 4.0, 6.0])[rng.integers(0, 6, len(vi))],
                                  category=np.array(VOLUNTEER_CATEGORIES)[rng.integers(0, 6, len(vi))],
                                  updated_at=stamp(rng, np.minimum(vdate + rng.integers(0, 3, len(vi)) * D, end))))
    volunteer = volunteer.sort_values(["service_date", "member_id"], kind="stable").reset_index(drop=True)
    volunteer.insert(0, "record_id", np.arange(1, len(volunteer) + 1))

    # --- meetings (三会一课 + innovative activity types) and attendance ---------------
    counts = np.bincount(mb, minlength=nb)
    lo = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mt_rows = []  # (branch, month, type, date, fabricated_reason)
    for t in range(T):
        wd = wd_by_month[t]
        held = {
            "支委会": rng.random(nb) < sigmoid(2.2 + 1.5 * b_eff),
            "支部党员大会": (t % 3 == 2) & (rng.random(nb) < sigmoid(2.5 + 1.5 * b_eff)),
            "党课": (t % 3 == 1) & (rng.random(nb) < sigmoid(2.5 + 1.5 * b_eff)),
            "主题党日": rng.random(nb) < np.where(innovative, 0.85, 0.25),
            "novel": (t % 3 == 0) & (rng.random(nb) < np.where(innovative, 0.6, 0.04)),
        }
        for mtype, mask in held.items():
            idx = np.flatnonzero(mask & (counts > 0))
            if len(idx) == 0:
                continue
            dates = wd[rng.integers(0, len(wd), len(idx))]
            types = (np.array(NOVEL_TYPES)[rng.integers(0, len(NOVEL_TYPES), len(idx))] if mtype == "novel"
                     else np.full(len(idx), mtype))
            mt_rows.append(pd.DataFrame(dict(b=idx, t=t, meeting_type=types, meeting_date=dates, fab="")))
        # fabricated records: a required all-member meeting that did not happen is "recorded" anyway
        for mtype in ("支部党员大会", "党课"):
            if (mtype == "支部党员大会" and t % 3 != 2) or (mtype == "党课" and t % 3 != 1):
                continue
            idx = np.flatnonzero(fabricates & ~held[mtype] & (counts > 2) & (rng.random(nb) < 0.9))
            if len(idx) == 0:
                continue
            on_hol = rng.random(len(idx)) < 0.4
            pool_h = hol_by_month[t] if len(hol_by_month[t]) else nonwork_by_month[t]
            dates = np.where(on_hol, pool_h[rng.integers(0, len(pool_h), len(idx))], wd[rng.integers(0, len(wd), len(idx))])
            mt_rows.append(pd.DataFrame(dict(b=idx, t=t, meeting_type=mtype, meeting_date=dates,
                                             fab=np.where(on_hol, "holiday", "copied"))))
    mt = pd.concat(mt_rows, ignore_index=True).sort_values(["meeting_date", "b", "meeting_type"], kind="stable")
    mt = mt.reset_index(drop=True)
    mt["meeting_id"] = np.arange(1, len(mt) + 1)
    committee = np.isin(mt.meeting_type.to_numpy(), ["支委会"])
    mcount = np.where(committee, np.minimum(5, counts[mt.b]), counts[mt.b])
    rep = np.repeat(np.arange(len(mt)), mcount)
    offs = np.arange(len(rep)) - np.repeat(np.cumsum(mcount) - mcount, mcount)
    memb = lo[mt.b.to_numpy()[rep]] + offs
    ok = active[memb, mt.t.to_numpy()[rep]]
    rep, memb = rep[ok], memb[ok]
    p_att = sigmoid(1.6 + 1.0 * v[memb, mt.t.to_numpy()[rep]] + 0.5 * b_eff[mt.b.to_numpy()[rep]])
    r = rng.random(len(rep))
    status = np.where(r < p_att, "出席", np.where(r < p_att + (1 - p_att) * 0.7, "请假", "缺席")).astype(object)

    # fabricated meetings copy the attendance list of the branch's previous real all-member meeting
    fab = mt.fab.to_numpy()
    att = pd.DataFrame(dict(meeting_idx=rep, member_idx=memb, status=status))
    fab_idx = np.flatnonzero(fab != "")
    if len(fab_idx):
        real_all = mt[(mt.fab == "") & mt.meeting_type.isin(["支部党员大会", "党课"])]
        last_real = {}
        for row in real_all.itertuples():
            last_real.setdefault(row.b, []).append((row.meeting_date, row.Index))
        keep = ~np.isin(att.meeting_idx.to_numpy(), fab_idx)
        copies = [att[keep]]
        by_meeting = {k: g for k, g in att.groupby("meeting_idx")}
        for fi in fab_idx:
            prev = [i for d, i in last_real.get(mt.b.iat[fi], []) if d < mt.meeting_date.iat[fi]]
            if prev and prev[-1] in by_meeting:
                c = by_meeting[prev[-1]].copy()
                c["meeting_idx"] = fi
                copies.append(c)
                fab[fi] = fab[fi] + ",identical_attendance" if fab[fi] else "identical_attendance"
            elif fi in by_meeting:
                copies.append(by_meeting[fi])
        att = pd.concat(copies, ignore_index=True)
    present = att[att.status == "出席"].groupby("meeting_idx").size().reindex(np.arange(len(mt)), fill_value=0).to_numpy()
    declared = present + np.where(rng.random(len(mt)) < 0.03, rng.integers(-1, 2, len(mt)), 0)
    impossible = (fab != "") & (rng.random(len(mt)) < 0.25)
    declared = np.where(impossible, counts[mt.b] + rng.integers(3, 15, len(mt)), np.maximum(declared, 0))
    fab = np.array([(f + ",impossible_count") if imp else f for f, imp in zip(fab, impossible)], dtype=object)
    branch_org = bl.org_id.to_numpy()
    mdates = mt.meeting_date.to_numpy().astype("datetime64[D]")
    meetings = pd.DataFrame(dict(
        meeting_id=mt.meeting_id, org_id=branch_org[mt.b], meeting_type=mt.meeting_type, meeting_date=mdates,
        topic=np.char.add(mt.meeting_type.to_numpy().astype(str), "：学习贯彻党的创新理论"),
        declared_attendance=declared, host_member_id=member_id[lo[mt.b.to_numpy()]],
        updated_at=stamp(rng, np.minimum(mdates + rng.integers(0, 4, len(mt)) * D, end)),
    ))
    att = att.sort_values(["meeting_idx", "member_idx"], kind="stable").reset_index(drop=True)
    attendance = pd.DataFrame(dict(attendance_id=np.arange(1, len(att) + 1),
                                   meeting_id=mt.meeting_id.to_numpy()[att.meeting_idx],
                                   member_id=member_id[att.member_idx], status=att.status.to_numpy(),
                                   updated_at=meetings.updated_at.to_numpy()[att.meeting_idx]))
    fabricated = pd.DataFrame(dict(meeting_id=mt.meeting_id.to_numpy()[fab != ""], reasons=fab[fab != ""]))
    branch_truth = pd.DataFrame(dict(org_id=branch_org, innovative=innovative, fabricates=fabricates,
                                     diligence=b_eff))

    # --- learning answers (学习问答) by cadres, streaky -------------------------------------
    cl = p.cadre_latent
    cm = cl.member_id.to_numpy() - 1
    work_days = days[wmask]
    reg_c = reg[cm]
    dil = cl.diligence.to_numpy()
    a1, a0 = sigmoid(3.2 + 0.9 * dil), sigmoid(0.2 + 0.9 * dil)
    state = np.ones(len(cm), dtype=bool)
    la_member, la_day = [], []
    for d in work_days:
        pr = np.where(state, a1, a0)
        state = rng.random(len(cm)) < pr
        on = state & (reg_c <= d) & (np.isnat(at[cm]) | (at[cm] >= d))
        la_member.append(member_id[cm[on]])
        la_day.append(np.full(on.sum(), d))
    la_member = np.concatenate(la_member)
    la_day = np.concatenate(la_day).astype("datetime64[D]")
    answered_at = la_day.astype("datetime64[s]") + rng.integers(7 * 3600, 23 * 3600, len(la_day)).astype("timedelta64[s]")
    correct = rng.binomial(5, 0.8, len(la_day))
    learning_answers = pd.DataFrame(dict(answer_id=np.arange(1, len(la_day) + 1), member_id=la_member,
                                         answer_date=la_day, answered_at=answered_at, questions=5,
                                         correct=correct, score=correct * 20, updated_at=answered_at))

    # --- village work records (每日工作记实) and 帮扶 projects --------------------------------
    va = p.village_assignments
    cad_dil = dict(zip(cl.cadre_id, dil))
    vw = []
    for a in va.itertuples():
        s = max(np.datetime64(a.start_date, "D"), start)
        e = end if pd.isna(a.end_date) else min(np.datetime64(a.end_date, "D"), end)
        wd = work_days[(work_days >= s) & (work_days <= e)]
        if len(wd) == 0:
            continue
        pr = sigmoid(1.6 + 1.2 * cad_dil[a.cadre_id])
        st, rec = True, np.empty(len(wd), dtype=bool)
        for i, x in enumerate(rng.random(len(wd))):
            st = x < (pr if st else pr * 0.5)
            rec[i] = st
        d = wd[rec]
        vw.append(pd.DataFrame(dict(assignment_id=a.assignment_id, cadre_id=a.cadre_id, village_org_id=a.village_org_id,
                                    work_date=d)))
    village_work = pd.concat(vw, ignore_index=True) if vw else pd.DataFrame(
        columns=["assignment_id", "cadre_id", "village_org_id", "work_date"])
    nv = len(village_work)
    tmpl = np.array(WORK_TEMPLATES)[rng.integers(0, len(WORK_TEMPLATES), nv)]
    topics = np.array(WORK_TOPICS)[rng.integers(0, len(WORK_TOPICS), nv)]
    nums = rng.integers(3, 40, nv)
    village_work["content"] = [t.format(n=k, t=tp) for t, k, tp in zip(tmpl, nums, topics)]
    village_work["photo_count"] = rng.poisson(2.5, nv)
    village_work["signed_in"] = rng.random(nv) < 0.93
    wdts = village_work.work_date.to_numpy().astype("datetime64[D]")
    village_work["sign_in_at"] = np.where(village_work.signed_in, wdts.astype("datetime64[s]") +
                                          rng.integers(7 * 3600, 10 * 3600, nv).astype("timedelta64[s]"),
                                          np.datetime64("NaT"))
    village_work["updated_at"] = stamp(rng, wdts)
    village_work.insert(0, "record_id", np.arange(1, nv + 1))

    proj = []
    for a in va.itertuples():
        k = int(rng.integers(2, 6))
        s = start + rng.integers(-180, int((end - start) / D) - 60, k) * D
        dl = s + rng.integers(90, 366, k) * D
        done = rng.random(k) < sigmoid(1.0 + cad_dil[a.cadre_id])
        comp = s + ((dl - s) / D * rng.uniform(0.5, 1.3, k)).astype(int) * D
        comp = np.where(done & (comp <= end), comp, np.datetime64("NaT"))
        # an assignment still running has an open project near its deadline (1-15 or 16-60 days ahead) or
        # past it (1-39 or 40-89 days): the 督办预警, 已逾期 and 逾期注销 cases the rules act on exist in every
        # city, and so do projects a longer 督办预警 lead ([rules] project_warning_days) would catch
        r = rng.random()
        if pd.isna(a.end_date) and r < 0.75:
            case = a.assignment_id % 4
            ahead = int(rng.integers(1, 16) if case == 0 else rng.integers(16, 61))
            dl[0] = end + ahead * D if case in (0, 3) else \
                end - int(rng.integers(1, 40) if case == 1 else rng.integers(40, 90)) * D
            s[0] = min(s[0], dl[0] - 90 * D)
            comp[0] = np.datetime64("NaT")
        status = np.where(~np.isnat(comp), "已完成", np.where(dl >= end, "进行中", "已逾期"))
        proj.append(pd.DataFrame(dict(village_org_id=a.village_org_id, cadre_id=a.cadre_id,
                                      category=np.array(PROJECT_CATEGORIES)[rng.integers(0, 6, k)],
                                      start_date=s, deadline=dl, completed_date=comp, status=status,
                                      budget_yuan=np.round(rng.lognormal(11, 0.8, k), -2))))
    projects = pd.concat(proj, ignore_index=True)
    projects.insert(0, "project_id", np.arange(1, len(projects) + 1))
    projects["project_name"] = [f"{c}项目{i:04d}" for c, i in zip(projects.category, projects.project_id)]
    touched = np.where(np.isnat(projects.completed_date.to_numpy().astype("datetime64[D]")),
                       projects.start_date.to_numpy().astype("datetime64[D]"),
                       projects.completed_date.to_numpy().astype("datetime64[D]"))
    projects["updated_at"] = stamp(rng, np.clip(touched, start - 200 * D, end))

    return Behaviour(app_users, app_activity, learning_answers, meetings, attendance, dues, volunteer,
                     village_work, projects, vitality_truth, branch_truth, fabricated)
