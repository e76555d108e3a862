"""The ``redcloud`` command's usage errors: caught before any Spark session starts, with a clear message."""

from __future__ import annotations

from redcloud import cli


def test_an_unknown_gold_table_is_a_usage_error_naming_it(capsys):
    assert cli.main(["run", "gold", "--date", "2025-12-31", "--gold-tables", "dim_member, fct_projekt_status"]) == 2
    err = capsys.readouterr().err
    assert "fct_projekt_status" in err and "unknown gold table" in err
    assert "dim_member," not in err.split("writes:")[0]     # only the unknown name is reported as unknown
    assert "fct_project_status" in err                      # ... beside the tables that exist


def test_gold_tables_only_with_the_gold_stage(capsys):
    assert cli.main(["run", "silver", "--gold-tables", "dim_member"]) == 2
    assert "--gold-tables" in capsys.readouterr().err


def test_the_microbatch_engine_connect_needs_the_warm_engine_up(capsys, settings):
    from helpers import free_port

    s = settings.replace(spark={"connect_port": free_port(), "remote": ""})   # a port nothing listens on
    assert cli.engine_settings(s, "auto").spark.remote == ""                   # auto: a JVM of our own
    assert cli.engine_settings(s.replace(spark={"remote": "sc://127.0.0.1:1"}), "local").spark.remote == ""
    assert cli.engine_settings(s.replace(spark={"remote": "sc://127.0.0.1:1"}), "auto").spark.remote == "sc://127.0.0.1:1"
    try:
        cli.engine_settings(s, "connect")
    except RuntimeError as e:
        assert f"127.0.0.1:{s.spark.connect_port}" in str(e) and "services up --engine" in str(e)
    else:
        raise AssertionError("--engine connect without a running engine must fail")
