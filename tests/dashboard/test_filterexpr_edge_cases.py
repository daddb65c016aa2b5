"""Filter-box edge cases found in review: valid comparisons that look like markup or attribute
access, and digits that are not ASCII (the table reads them as text)."""

from __future__ import annotations

import pytest

from dashboard.views.instance_table.data import column_specs
from dashboard.views.instance_table.filterexpr import validate


@pytest.fixture(scope="module")
def specs(tiny_cache):
    return column_specs(tiny_cache)


@pytest.mark.parametrize("text, query", [
    ("{domain} < target", '{domain} < "target"'),
    ("{split} <val", '{split} < "val"'),
    ("{split} <val && {id} > 3", '{split} < "val" && {id} > 3'),
    ("{id} > 1.e3", "{id} > 1.e3"),
])
def test_comparisons_that_only_look_like_tags_or_attributes_are_accepted(specs, text, query):
    result = validate(text, specs)
    assert result.ok, result.message
    assert result.query == query


@pytest.mark.parametrize("text, pandas_query", [
    ("{domain} < target", "domain < 'target'"),
    ("{split} <val && {id} > 3", "split < 'val' and id > 3"),
    ("{id} > 1.e2", "id > 100"),
])
def test_the_server_evaluates_those_comparisons_as_pandas_does(tiny_cache, specs, text, pandas_query):
    """Issue 13: the table filters on the server now; the canonical queries above mean there what they say."""
    from dashboard.views.instance_table.boxquery import box_mask
    from dashboard.views.instance_table.data import table_frame

    frame = table_frame(tiny_cache)
    want = frame.eval(pandas_query).to_numpy(dtype=bool)
    assert 0 < want.sum() < len(frame)
    assert (box_mask(frame, validate(text, specs).query, specs) == want).all()


@pytest.mark.parametrize("text, reason", [
    ("<script>alert(1)</script>", "tags"),
    ("{domain} = target && <img src=x onerror=alert(1)>", "tags"),
    ("{id} > 3 <!--", "tags"),
    ("{label} = x.foo", "attribute"),
    ("a1.b", "attribute"),
    ("{id} = \u0663", "numbers"),      # Arabic-Indic three
    ("{id} > \uff12", "numbers"),      # full-width two
])
def test_markup_attributes_and_non_ascii_digits_are_refused(specs, text, reason):
    result = validate(text, specs)
    assert not result.ok and result.query == ""
    assert reason in result.message


@pytest.mark.parametrize("value", ["\u00b2", "\u2460", "\u0663"])
def test_unicode_digits_are_not_instance_ids(value):
    from dashboard.pool import as_ids, focus_id
    from dashboard.views.image_query.data import parse_typed_id

    assert as_ids([value]) == []
    assert focus_id(value, 10) is None
    assert parse_typed_id(value, 10)[0] is None
