"""Identity fusion (pure transforms): one person per member, every source record linked to a person or flagged.

``person_key`` is ``'P' || member_id``: every member of ``silver.members`` is a person. Records from the
other sources are linked to persons by the strongest evidence they carry, tier by tier:

=================  ==========================================================================  ==========
method             evidence                                                                    confidence
=================  ==========================================================================  ==========
``member_id``      the member record itself                                                    1.0
``id_number``      the 身份证号 pseudonym (keyed HMAC) equals a member's                         1.0
``masked_id_name`` web records: same name, and the published masked ID's first 6 / last 4      0.9
                   characters equal the member's masked ID
``name_unit``      cadres without ID: same name and ``unit_org_id`` = the member's ``org_id``;  0.8
                   数据铁笼 records without ID: same name as a cadre of the department's own unit
``name_region``    数据铁笼 records without ID: same name as a cadre whose unit is in the        0.7
                   department's county
``name_text``      news articles: a cadre's name and the name of the cadre's unit both occur    0.6
                   in the article
=================  ==========================================================================  ==========

Every record gets a ``status``: ``linked`` (exactly one candidate person), ``ambiguous`` (more than one
candidate: ``person_key`` stays NULL, never guessed; ``candidate_keys`` lists them) or ``unlinked``
(none). A record carrying an ID is matched on the ID only (a name match would contradict it).
Name-based candidates for cadres exclude members already claimed by another cadre's ID. Name-based
candidates for 数据铁笼 records are cadres; a cadre that is not itself linked to a person counts as
the candidate ``cadre:<cadre_id>``, which makes the record ambiguous rather than linked.

Sources (``source``, ``source_key``): ``member`` (member_id), ``cadre`` (cadre_id), ``ironcage``
(``identity_key`` of power operations, duty records and complaints: ``<dept_code>|<name>|<pseudonym
prefix or ->``), ``web_penalty`` (notice_id), ``web_enforcement`` (case_no), ``web_news`` (news_id).

``silver/persons``: one row per member with the linked cadre (if any) and ``conflicts``, the fields
where the cadre system disagrees with the member system (e.g. ``birth_date``; ``cadre_id`` when more
than one cadre record links to the person).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from redcloud.contracts import dept_org_sql

PERSON_PREFIX = "P"
CONFIDENCE = {"member_id": 1.0, "id_number": 1.0, "masked_id_name": 0.9, "name_unit": 0.8, "name_region": 0.7,
              "name_text": 0.6}
STATUSES = ("linked", "ambiguous", "unlinked")
LINK_COLUMNS = ["source", "source_key", "person_key", "method", "confidence", "status", "candidates",
                "candidate_keys"]
MASK_SHAPE = r"^[0-9]{6}[*]+[0-9]{3}[0-9X]$"
WEB_SOURCES = {"penalties": ("web_penalty", "notice_id", "party_name", "party_id_masked"),
               "enforcement": ("web_enforcement", "case_no", "name", "id_masked")}


@dataclass
class IdentityResult:
    links: DataFrame     # silver/person_links
    persons: DataFrame   # silver/persons


def person_key(member_id: Column) -> Column:
    return F.concat(F.lit(PERSON_PREFIX), member_id.cast("string"))


def _norm_name(c: Column) -> Column:
    """Names compared without surrounding/inner blanks (全角 spaces included)."""
    return F.regexp_replace(F.trim(c), r"[\s\u3000]+", "")


def _unit_label(org_name: Column) -> Column:
    """How an organisation is named in running text: without 中共 and the trailing 委员会."""
    return F.regexp_replace(F.regexp_replace(org_name, "委员会$", ""), "^中共", "")


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------

def resolve(records: DataFrame, candidates: DataFrame, method: str) -> DataFrame:
    """Link records by one method.

    ``records``: (source, source_key), one row per record; ``candidates``: (source, source_key, cand)
    pairs, any number per record. Returns :data:`LINK_COLUMNS`.
    """
    agg = (candidates.where(F.col("cand").isNotNull()).groupBy("source", "source_key")
           .agg(F.sort_array(F.collect_set("cand")).alias("candidate_keys")))
    out = records.select("source", "source_key").distinct().join(agg, ["source", "source_key"], "left")
    keys = F.coalesce(F.col("candidate_keys"), F.array().cast("array<string>"))
    n = F.size(keys)
    linked = (n == 1) & F.element_at(keys, 1).startswith(PERSON_PREFIX)
    return out.select(
        "source", "source_key",
        F.when(linked, F.element_at(keys, 1)).alias("person_key"),
        F.lit(method).alias("method"),
        F.when(linked, F.lit(CONFIDENCE[method])).cast("double").alias("confidence"),
        F.when(linked, "linked").when(n > 0, "ambiguous").otherwise("unlinked").alias("status"),
        n.cast("int").alias("candidates"),
        keys.alias("candidate_keys"),
    )


def first_decisive(*tiers: DataFrame) -> DataFrame:
    """Per record, the first tier that links it; else the first that finds it ambiguous; else the last."""
    ranked = [t.withColumn("_tier", F.lit(i)) for i, t in enumerate(tiers)]
    allr = reduce(DataFrame.unionByName, ranked)
    rank = F.when(F.col("status") == "linked", 0).when(F.col("status") == "ambiguous", 1).otherwise(2)
    w = Window.partitionBy("source", "source_key").orderBy(rank, F.when(rank == 2, -F.col("_tier"))
                                                           .otherwise(F.col("_tier")))
    return allr.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn", "_tier")


def _empty_links(spark) -> DataFrame:
    return spark.createDataFrame([], "source string, source_key string, person_key string, method string, "
                                     "confidence double, status string, candidates int, candidate_keys array<string>")


# ---------------------------------------------------------------------------------------------
# the people on each side
# ---------------------------------------------------------------------------------------------

def _org_frames(organizations: DataFrame | None) -> tuple[DataFrame | None, DataFrame | None]:
    if organizations is None:
        return None, None
    county = organizations.select(F.col("org_id").cast("bigint").alias("org_id"),
                                  F.col("region_code").alias("county"))
    label = organizations.select(F.col("org_id").cast("bigint").alias("org_id"),
                                 _unit_label(F.col("org_name")).alias("unit_label"))
    return county, label


def member_frame(members: DataFrame, county: DataFrame | None) -> DataFrame:
    m = members.select(
        F.col("member_id"), person_key(F.col("member_id")).alias("person_key"),
        _norm_name(F.col("member_name")).alias("name"), F.col("org_id").cast("bigint").alias("org_id"),
        F.col("id_number_pseudonym").alias("pseudo"), F.col("id_number_masked").alias("masked"))
    if county is not None:
        m = m.join(county, "org_id", "left")
    else:
        m = m.withColumn("county", F.lit(None).cast("string"))
    return m


def link_members(m: DataFrame) -> DataFrame:
    return m.select(
        F.lit("member").alias("source"), F.col("member_id").cast("string").alias("source_key"),
        F.col("person_key"), F.lit("member_id").alias("method"), F.lit(1.0).alias("confidence"),
        F.lit("linked").alias("status"), F.lit(1).alias("candidates"), F.array(F.col("person_key")).alias("candidate_keys"))


def link_cadres(cadres: DataFrame, m: DataFrame) -> DataFrame:
    """``id_number`` for cadres with a 身份证号, ``name_unit`` for the others."""
    c = cadres.select(F.lit("cadre").alias("source"), F.col("cadre_id").cast("string").alias("source_key"),
                      _norm_name(F.col("cadre_name")).alias("name"),
                      F.col("unit_org_id").cast("bigint").alias("unit_org_id"),
                      F.col("id_number_pseudonym").alias("pseudo"))
    with_id, without = c.where(F.col("pseudo").isNotNull()), c.where(F.col("pseudo").isNull())
    exact = resolve(with_id, with_id.join(m.select("pseudo", F.col("person_key").alias("cand")), "pseudo"),
                    "id_number")
    claimed = exact.where("status = 'linked'").select(F.col("person_key").alias("cand")).distinct()
    cands = (without.join(m.select("name", F.col("org_id").alias("unit_org_id"), F.col("person_key").alias("cand")),
                          ["name", "unit_org_id"])
             .join(claimed, "cand", "left_anti"))
    fuzzy = resolve(without, cands, "name_unit")
    return exact.unionByName(fuzzy)


def cadre_frame(cadres: DataFrame, cadre_links: DataFrame, county: DataFrame | None,
                label: DataFrame | None) -> DataFrame:
    """Cadres with their person (or ``cadre:<id>`` when unresolved), unit, county and unit label."""
    lk = cadre_links.select(F.col("source_key").alias("cadre_key"), "person_key")
    c = (cadres.select(F.col("cadre_id"), F.col("cadre_id").cast("string").alias("cadre_key"),
                       _norm_name(F.col("cadre_name")).alias("name"),
                       F.col("unit_org_id").cast("bigint").alias("unit_org_id"))
         .join(lk, "cadre_key", "left")
         .withColumn("cand", F.coalesce(F.col("person_key"), F.concat(F.lit("cadre:"), F.col("cadre_key")))))
    if county is not None:
        c = c.join(county.withColumnRenamed("org_id", "unit_org_id"), "unit_org_id", "left")
    else:
        c = c.withColumn("county", F.lit(None).cast("string"))
    if label is not None:
        c = c.join(label.withColumnRenamed("org_id", "unit_org_id"), "unit_org_id", "left")
    else:
        c = c.withColumn("unit_label", F.lit(None).cast("string"))
    return c


def ironcage_people(frames: list[tuple[DataFrame, str, str | None]]) -> DataFrame | None:
    """Distinct (identity_key, dept_code, name, pseudo) over the 数据铁笼 tables."""
    parts = []
    for df, name_col, id_col in frames:
        if df is None:
            continue
        pseudo = F.col(f"{id_col}_pseudonym") if id_col else F.lit(None).cast("string")
        parts.append(df.select(F.col("identity_key"), F.col("dept_code"), _norm_name(F.col(name_col)).alias("name"),
                               pseudo.alias("pseudo")))
    if not parts:
        return None
    return reduce(DataFrame.unionByName, parts).distinct()


def link_ironcage(people: DataFrame, m: DataFrame, cad: DataFrame, county: DataFrame | None) -> DataFrame:
    """``id_number`` when the record shows a 身份证号; else ``name_unit`` then ``name_region`` among cadres."""
    p = (people.select(F.lit("ironcage").alias("source"), F.col("identity_key").alias("source_key"), "name", "pseudo",
                       F.expr(dept_org_sql("dept_code")).alias("dept_org_id"))
         .dropDuplicates(["source_key"]))
    if county is not None:
        p = p.join(county.select(F.col("org_id").alias("dept_org_id"), F.col("county").alias("dept_county")),
                   "dept_org_id", "left")
    else:
        p = p.withColumn("dept_county", F.lit(None).cast("string"))
    with_id, without = p.where(F.col("pseudo").isNotNull()), p.where(F.col("pseudo").isNull())
    exact = resolve(with_id, with_id.join(m.select("pseudo", F.col("person_key").alias("cand")), "pseudo"),
                    "id_number")
    cs = cad.select("name", "unit_org_id", "county", "cand")
    unit = resolve(without, without.join(cs, (without.name == cs.name) & (without.dept_org_id == cs.unit_org_id))
                   .select("source", "source_key", "cand"), "name_unit")
    region = resolve(without, without.join(cs, (without.name == cs.name) & (without.dept_county == cs.county))
                     .select("source", "source_key", "cand"), "name_region")
    return exact.unionByName(first_decisive(unit, region))


def link_web_masked(df: DataFrame, source: str, key_col: str, name_col: str, masked_col: str,
                    m: DataFrame) -> DataFrame:
    """``masked_id_name``: same name and the masked ID's first 6 / last 4 characters equal the member's."""
    masked = F.upper(F.trim(F.col(masked_col)))
    r = df.select(F.lit(source).alias("source"), F.col(key_col).cast("string").alias("source_key"),
                  _norm_name(F.col(name_col)).alias("name"),
                  F.when(masked.rlike(MASK_SHAPE), F.substring(masked, 1, 6)).alias("pre"),
                  F.when(masked.rlike(MASK_SHAPE), F.substring(masked, -4, 4)).alias("suf"))
    mm = m.select("name", F.substring("masked", 1, 6).alias("pre"), F.substring("masked", -4, 4).alias("suf"),
                  F.col("person_key").alias("cand"))
    return resolve(r, r.join(mm, ["name", "pre", "suf"]), "masked_id_name")


def _substrings(text: Column, n: int) -> Column:
    """Every substring of ``text`` of length ``n``, as an array (empty when the text is shorter)."""
    every = F.transform(F.sequence(F.lit(1), F.greatest(F.length(text), F.lit(1))), lambda i: F.substring(text, i, n))
    return F.filter(every, lambda g: F.length(g) == n)


def link_news(news: DataFrame, cad: DataFrame) -> DataFrame:
    """``name_text``: a cadre's name and the cadre's unit both occur in the article."""
    r = news.select(F.lit("web_news").alias("source"), F.col("news_id").cast("string").alias("source_key"),
                    F.concat_ws("\n", F.col("title"), F.col("body")).alias("text"))
    cs = cad.where((F.length("name") >= 2) & F.col("unit_label").isNotNull() & (F.length("unit_label") >= 2)) \
        .select("name", "unit_label", "cand")
    # A name occurs in a text iff it equals one of the text's substrings of the name's length. Joining
    # on those substrings (an equi-join, linear in text length) gives the same pairs as testing
    # instr(text, name) for every (article, cadre) pair, a nested loop that grows with articles x cadres.
    lengths = sorted(r_[0] for r_ in cs.select(F.length("name")).distinct().collect()) or [2]
    subs = [_substrings(F.col("text"), n) for n in lengths]
    grams = (r.select("source", "source_key", "text", F.explode(F.flatten(F.array(*subs))).alias("_gram"))
             .distinct())
    hits = (grams.join(cs, grams._gram == cs.name)
            .where(F.instr(F.col("text"), F.col("unit_label")) > 0))
    return resolve(r, hits.select("source", "source_key", "cand"), "name_text")


# ---------------------------------------------------------------------------------------------
# persons
# ---------------------------------------------------------------------------------------------

def _differs(a: Column, b: Column, name: str) -> Column:
    return F.when(a.isNotNull() & b.isNotNull() & (a != b), F.lit(name))


def build_persons(members: DataFrame, cadres: DataFrame | None, cadre_links: DataFrame | None) -> DataFrame:
    """One row per member: person_key, member_id, cadre_id (linked cadre), name, IDs, conflicts."""
    m = members.select(
        person_key(F.col("member_id")).alias("person_key"), "member_id", F.col("member_name").alias("name"),
        "gender", "birth_date", "ethnicity", "org_id", "id_number_pseudonym", "id_number_masked",
        F.col("phone_pseudonym").alias("_m_phone"))
    if cadres is None or cadre_links is None:
        return m.select(*[c for c in m.columns if not c.startswith("_")],
                        F.lit(None).cast("bigint").alias("cadre_id"),
                        F.array().cast("array<string>").alias("conflicts"))
    lk = cadre_links.where("status = 'linked'").select(F.col("source_key").alias("_ck"), "person_key")
    c = (cadres.select(F.col("cadre_id"), F.col("cadre_id").cast("string").alias("_ck"),
                       F.col("cadre_name").alias("_c_name"), F.col("gender").alias("_c_gender"),
                       F.col("birth_date").alias("_c_birth"), F.col("ethnicity").alias("_c_ethnicity"),
                       F.col("id_number_pseudonym").alias("_c_pseudo"), F.col("phone_pseudonym").alias("_c_phone"))
         .join(lk, "_ck"))
    w = Window.partitionBy("person_key").orderBy("cadre_id")
    c = (c.withColumn("_n_cadres", F.count(F.lit(1)).over(w.rowsBetween(Window.unboundedPreceding,
                                                                            Window.unboundedFollowing)))
         .withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn", "_ck"))
    j = m.join(c, "person_key", "left")
    conflicts = F.array(
        _differs(_norm_name(F.col("name")), _norm_name(F.col("_c_name")), "name"),
        _differs(F.col("gender"), F.col("_c_gender"), "gender"),
        _differs(F.col("birth_date"), F.col("_c_birth"), "birth_date"),
        _differs(F.col("ethnicity"), F.col("_c_ethnicity"), "ethnicity"),
        _differs(F.col("id_number_pseudonym"), F.col("_c_pseudo"), "id_number"),
        _differs(F.col("_m_phone"), F.col("_c_phone"), "phone"),
        F.when(F.col("_n_cadres") > 1, F.lit("cadre_id")),
    )
    return j.select("person_key", "member_id", F.col("cadre_id").cast("bigint").alias("cadre_id"), "name", "gender",
                    "birth_date", "org_id", "id_number_pseudonym", "id_number_masked",
                    F.filter(conflicts, lambda x: x.isNotNull()).alias("conflicts"))


# ---------------------------------------------------------------------------------------------
# everything
# ---------------------------------------------------------------------------------------------

def build_identity(members: DataFrame, cadres: DataFrame | None = None, organizations: DataFrame | None = None,
                   power_operations: DataFrame | None = None, duty_records: DataFrame | None = None,
                   complaints: DataFrame | None = None, penalties: DataFrame | None = None,
                   enforcement: DataFrame | None = None, news: DataFrame | None = None) -> IdentityResult:
    """``silver/person_links`` and ``silver/persons`` from the silver tables (any but members may be None)."""
    spark = members.sparkSession
    county, label = _org_frames(organizations)
    m = member_frame(members, county)
    parts = [link_members(m)]
    cadre_links = None
    cad = None
    if cadres is not None:
        cadre_links = link_cadres(cadres, m)
        parts.append(cadre_links)
        cad = cadre_frame(cadres, cadre_links, county, label)
    people = ironcage_people([(power_operations, "handler_name", "handler_id_number"),
                              (duty_records, "cadre_name", "cadre_id_number"),
                              (complaints, "handler_name", None)])
    if people is not None:
        if cad is None:
            cad = spark.createDataFrame([], "name string, unit_org_id bigint, county string, cand string, "
                                            "unit_label string")
        parts.append(link_ironcage(people, m, cad, county))
    for name, df in (("penalties", penalties), ("enforcement", enforcement)):
        if df is not None:
            source, key_col, name_col, masked_col = WEB_SOURCES[name]
            parts.append(link_web_masked(df, source, key_col, name_col, masked_col, m))
    if news is not None and cad is not None:
        parts.append(link_news(news, cad))
    elif news is not None:
        r = news.select(F.lit("web_news").alias("source"), F.col("news_id").cast("string").alias("source_key"))
        parts.append(resolve(r, r.withColumn("cand", F.lit(None).cast("string")), "name_text"))
    links = reduce(DataFrame.unionByName, [p.select(*LINK_COLUMNS) for p in parts], _empty_links(spark))
    persons = build_persons(members, cadres, cadre_links)
    return IdentityResult(links, persons)
