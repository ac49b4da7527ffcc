"""Pure tests of cell-tag parsing."""
import pytest

from nbflow.errors import TagError
from nbflow.tags import Tag, parse_tag, placeholders


@pytest.mark.parametrize("raw,expected", [
    ("parameters", Tag("parameters")),
    ("check", Tag("check")),
    ("upstream:etl/clean", Tag("upstream", "etl/clean")),
    ("reads:data/{run_date}/x.csv", Tag("reads", "data/{run_date}/x.csv")),
    ("writes: out.csv", Tag("writes", "out.csv")),
    ("retries:3", Tag("retries", 3)),
    ("timeout:60", Tag("timeout", 60.0)),
    ("timeout:2.5s", Tag("timeout", 2.5)),
    ("pool:db", Tag("pool", "db")),
])
def test_known_tags_parse(raw, expected):
    assert parse_tag(raw, "nb.ipynb", 1) == expected


@pytest.mark.parametrize("raw", ["checkpoint", "readme", "skip-execution", "injected-parameters", "hide_input", "parametersx"])
def test_foreign_tags_are_ignored(raw):
    assert parse_tag(raw, "nb.ipynb", 0) is None


@pytest.mark.parametrize("raw,fix", [
    ("upstream=ingest", "upstream:ingest"),
    ("upstream ingest", "upstream:ingest"),
    ("upstream:", "upstream:ingest"),
    ("Upstream:ingest", "upstream:ingest"),
    ("retries:three", "retries:3"),
    ("timeout:-1", "timeout:600"),
    ("check:yes", "'check'"),
    ("parameters:x", "'parameters'"),
    ("writes:data/{}/x.csv", "{run_date}"),
    ("reads:data/{run date}/x.csv", "{run_date}"),
    ("upstream:a b", "etl/clean"),
])
def test_malformed_known_tags_raise_with_notebook_cell_and_fix(raw, fix):
    with pytest.raises(TagError) as err:
        parse_tag(raw, "notebooks/clean.ipynb", 4)
    msg = str(err.value)
    assert msg.startswith("notebooks/clean.ipynb, cell 5: ")
    assert "Fix:" in msg and fix in msg
    assert err.value.cell == 4


def test_placeholders():
    assert placeholders("data/{run_date}/{region}.csv") == {"run_date", "region"}
    assert placeholders("plain.csv") == set()


def test_errors_pickle():
    import pickle

    try:
        parse_tag("retries:x", "a.ipynb", 2)
    except TagError as e:
        copy = pickle.loads(pickle.dumps(e))
        assert str(copy) == str(e) and copy.cell == 2
