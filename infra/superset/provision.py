"""Provision Superset from code: admin user, the dashboard bundle, roles, users and row-level security.

Runs in the Superset virtualenv (never imports redcloud) with ``SUPERSET_CONFIG_PATH`` set, after
``superset db upgrade`` and ``superset init``::

    python infra/superset/provision.py <plan.json>

The plan (written by ``redcloud.services.superset``; it holds passwords, so it lives in the
Superset home with mode 0600 and is deleted afterwards) names:

    admin: {username, password}
    bundle: path of the ZIP built by build_bundle.py
    restricted_datasets: dataset names (table_name) only the restricted role may read
    restricted_role: name of that role
    city_datasets: dataset names without a county column (city-wide data): not for county roles
    shared_datasets: dataset names without county rows that county roles read as they are (no RLS filter)
    analyst_role: role that reads every unrestricted dataset in every county
    counties: [{name, role}]   one role per county: every unrestricted dataset + an RLS filter
    users: [{username, password, first_name, roles: [...]}]

Everything is create-or-update, so it can run at every start. Prints one JSON line with what it did.
"""

from __future__ import annotations

import json
import sys
import zipfile


def main(plan_path: str) -> None:
    with open(plan_path, encoding="utf-8") as fh:
        plan = json.load(fh)

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from flask import g
        from superset import db, security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle
        from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
        from superset.models.dashboard import Dashboard
        from superset.utils.core import RowLevelSecurityFilterType

        sm = security_manager
        report: dict = {}

        # -- admin
        admin_cfg = plan["admin"]
        admin = sm.find_user(username=admin_cfg["username"])
        admin_role = sm.find_role("Admin")
        if admin is None:
            admin = sm.add_user(admin_cfg["username"], "系统", "管理员", f"{admin_cfg['username']}@localhost",
                                admin_role, password=admin_cfg["password"])
            report["admin"] = "created"
        else:
            sm.reset_password(admin.id, admin_cfg["password"])
            report["admin"] = "password reset"
        g.user = admin

        # -- bundle (overwrite: the repository is the source of truth)
        with zipfile.ZipFile(plan["bundle"]) as z:
            contents = get_contents_from_bundle(z)
        ImportAssetsCommand(contents).run()
        db.session.commit()

        datasets = db.session.query(SqlaTable).all()
        restricted = set(plan.get("restricted_datasets", []))
        open_sets = [d for d in datasets if d.table_name not in restricted]
        city = set(plan.get("city_datasets", []))
        county_sets = [d for d in open_sets if d.table_name not in city]
        shared = set(plan.get("shared_datasets", []))   # read by county roles too, without an RLS filter
        closed_sets = [d for d in datasets if d.table_name in restricted]
        report["datasets"] = sorted(d.table_name for d in datasets)

        def perms_for(ds_list):
            out = []
            for ds in ds_list:
                pv = sm.find_permission_view_menu("datasource_access", ds.perm)
                if pv is None:
                    sm.add_permission_view_menu("datasource_access", ds.perm)
                    pv = sm.find_permission_view_menu("datasource_access", ds.perm)
                out.append(pv)
            return out

        def ensure_role(name, ds_list):
            role = sm.find_role(name) or sm.add_role(name)
            role.permissions = perms_for(ds_list)
            return role

        roles = {plan["analyst_role"]: ensure_role(plan["analyst_role"], open_sets),
                 plan["restricted_role"]: ensure_role(plan["restricted_role"], closed_sets)}

        # -- one role per county, each with a row-level security filter on every dataset it reads
        for county in plan.get("counties", []):
            role = ensure_role(county["role"], county_sets)
            roles[county["role"]] = role
            name = f"RLS {county['role']}"
            rls = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
            if rls is None:
                rls = RowLevelSecurityFilter(name=name)
                db.session.add(rls)
            rls.filter_type = RowLevelSecurityFilterType.REGULAR
            rls.clause = "county_name = '{}'".format(county["name"].replace("'", "''"))
            rls.group_key = "county"
            rls.description = f"区县角色只看本区县数据：{county['name']}"
            rls.tables = [d for d in county_sets if d.table_name not in shared]
            rls.roles = [role]
        db.session.commit()

        # -- the restricted dashboard (诚信画像) is visible to its role only (DASHBOARD_RBAC)
        for dash in db.session.query(Dashboard).all():
            if any(s.datasource_id in {d.id for d in closed_sets} for s in dash.slices):
                dash.roles = [roles[plan["restricted_role"]]]
        db.session.commit()

        # -- users
        gamma = sm.find_role("Gamma")
        made = []
        for u in plan.get("users", []):
            user_roles = [gamma] + [roles[r] for r in u["roles"]]
            user = sm.find_user(username=u["username"])
            if user is None:
                sm.add_user(u["username"], u.get("first_name", u["username"]), "用户", f"{u['username']}@localhost",
                            user_roles, password=u["password"])
            else:
                user.roles = user_roles
                db.session.commit()
                sm.reset_password(user.id, u["password"])
            made.append(u["username"])
        report["users"] = made
        report["roles"] = sorted(roles)
        report["dashboards"] = sorted(d.dashboard_title for d in db.session.query(Dashboard).all())
        db.session.commit()
        print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
