"""Records of the external sources attached to cadres through identity fusion (silver/person_links).

数据铁笼 records (power operations, complaints, duty records) and web records (penalties, enforcement,
news) reach a cadre only through a *linked* person (``status = 'linked'``): ambiguous or unlinked
records are never guessed onto a cadre. ``persons`` maps a person to the cadre linked to it.
"""

from __future__ import annotations

import pandas as pd

from models.common import Env


def _person_to_cadre(env: Env) -> pd.DataFrame:
    persons = env.read("silver", "persons", ["person_key", "cadre_id"])
    if persons is None:
        return pd.DataFrame(columns=["person_key", "cadre_id"])
    return persons.dropna(subset=["cadre_id"]).astype({"cadre_id": "int64"})


def links(env: Env, source: str) -> pd.DataFrame:
    """(source_key, cadre_id) for the records of one person_links source that are linked to a cadre."""
    pl = env.read("silver", "person_links", ["source", "source_key", "person_key", "status"])
    if pl is None:
        return pd.DataFrame(columns=["source_key", "cadre_id"])
    pl = pl[(pl.source == source) & (pl.status == "linked")]
    return pl.merge(_person_to_cadre(env), on="person_key")[["source_key", "cadre_id"]]


def ironcage(env: Env, name: str, columns: list[str]) -> pd.DataFrame:
    """A 数据铁笼 silver table with ``cadre_id`` (linked rows only; empty frame if the table is missing)."""
    df = env.read("silver", name)
    if df is None or df.empty:
        return pd.DataFrame(columns=[*columns, "cadre_id"])
    if "is_deleted" in df:
        df = df[~df.is_deleted.fillna(False).astype(bool)]
    lk = links(env, "ironcage").rename(columns={"source_key": "identity_key"})
    return df.merge(lk, on="identity_key")[[*columns, "cadre_id"]]


def web(env: Env, name: str, key: str, source: str, columns: list[str]) -> pd.DataFrame:
    df = env.read("silver", name)
    if df is None or df.empty:
        return pd.DataFrame(columns=[key, *columns, "cadre_id"])
    lk = links(env, source).rename(columns={"source_key": key})
    df[key] = df[key].astype(str)
    return df.merge(lk, on=key)[[key, *columns, "cadre_id"]]
