"""The Grafana ClickHouse macro / variable expander, checked on its own and on the engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboards.macros import Expansion, MacroError, auto_interval_s, expand

START = datetime(2026, 11, 20, tzinfo=UTC)
END = datetime(2026, 11, 21, tzinfo=UTC)


def ctx(**selected):
    options = {"cluster": ["a", "b"], "workflow": ["chat", "o'brien"]}
    sel = {k: None for k in options}
    sel.update(selected)
    return Expansion(START, END, selected=sel, options=options, interval_s=3600)


def test_time_filter_and_interval_macros():
    sql = expand("SELECT $__timeInterval(hour) AS time FROM t WHERE $__timeFilter(hour) AND $__timeFilter_ms(ts)", ctx())
    s, e = int(START.timestamp()), int(END.timestamp())
    assert f"hour >= toDateTime({s}) AND hour <= toDateTime({e})" in sql
    assert f"ts >= fromUnixTimestamp64Milli({s * 1000}) AND ts <= fromUnixTimestamp64Milli({e * 1000})" in sql
    assert "toStartOfInterval(toDateTime(hour), INTERVAL 3600 second)" in sql


def test_from_to_and_date_macros():
    sql = expand("SELECT $__fromTime, $__toTime_ms, $__interval_s WHERE $__dateFilter(d) AND $__dt(d, t)", ctx())
    assert f"toDateTime({int(START.timestamp())})" in sql
    assert f"fromUnixTimestamp64Milli({int(END.timestamp() * 1000)})" in sql
    assert "d >= toDate('2026-11-20') AND d <= toDate('2026-11-21')" in sql
    assert ", 3600 WHERE" in sql


def test_conditional_all_drops_the_condition_only_when_all_is_selected():
    tmpl = "WHERE $__conditionalAll(cluster IN (${cluster:singlequote}), $cluster) AND x = 1"
    assert expand(tmpl, ctx()) == "WHERE 1=1 AND x = 1"
    assert expand(tmpl, ctx(cluster=["b"])) == "WHERE cluster IN ('b') AND x = 1"


def test_variables_all_expands_to_every_option_and_quotes_are_escaped():
    assert expand("IN (${workflow:singlequote})", ctx()) == "IN ('chat','o\\'brien')"
    assert expand("IN (${workflow:sqlstring})", ctx()) == "IN ('chat','o''brien')"
    assert expand("'${cluster:csv}'", ctx(cluster=["a", "b"])) == "'a,b'"
    assert expand("x = $cluster", ctx(cluster=["a"])) == "x = 'a'"


def test_unknown_macro_variable_or_format_is_an_error():
    with pytest.raises(MacroError, match="nosuch"):
        expand("SELECT $nosuch", ctx())
    with pytest.raises(MacroError, match=r"\$__bogus"):
        expand("SELECT $__bogus(x)", ctx())
    with pytest.raises(MacroError, match="format"):
        expand("SELECT ${cluster:regexish}", ctx())
    with pytest.raises(MacroError, match="argument"):
        expand("WHERE $__timeFilter()", ctx())
    with pytest.raises(MacroError, match="empty"):
        expand("SELECT 1", Expansion(END, START))


def test_auto_interval_is_a_nice_step_bounding_the_points():
    assert auto_interval_s(START, END) == 300
    month = datetime(2026, 12, 20, tzinfo=UTC)
    step = auto_interval_s(START, month)
    assert (month - START).total_seconds() / step <= 300 and step == 10800


def test_expanded_filters_select_exactly_the_range_on_the_engine(store):
    rows = store.query_rows(expand(
        "SELECT count() FROM (SELECT toDateTime('2026-11-19 23:00:00', 'UTC') AS hour UNION ALL "
        "SELECT toDateTime('2026-11-20 05:00:00', 'UTC') UNION ALL SELECT toDateTime('2026-11-21 00:00:00', 'UTC') "
        "UNION ALL SELECT toDateTime('2026-11-21 00:00:01', 'UTC')) WHERE $__timeFilter(hour)", ctx()))
    assert rows[0][0] == 2  # both ends inclusive, like the plugin
