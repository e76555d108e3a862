"""The API's point-read cache: bounded, least recently used out first, off at size 0."""

from redcloud.api.db import RowCache


def test_least_recently_used_entry_leaves_first():
    c = RowCache(2)
    c.put("a", [{"x": 1}])
    c.put("b", [{"x": 2}])
    assert c.get("a") == [{"x": 1}]          # a is now the most recent
    c.put("c", [{"x": 3}])                    # b goes
    assert c.get("b") is None
    assert c.get("a") == [{"x": 1}] and c.get("c") == [{"x": 3}]


def test_size_zero_remembers_nothing():
    c = RowCache(0)
    c.put("a", [{"x": 1}])
    assert c.get("a") is None


def test_an_empty_result_is_remembered_too():
    c = RowCache(5)
    c.put("missing", [])
    assert c.get("missing") == []
