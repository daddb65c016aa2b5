"""The image pool and focus helpers shared by the diagnosis and timeline views."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.pool import POOL_SIZE, add_to_pool, as_ids, focus_id


def test_new_ids_are_appended_as_the_latest_and_duplicates_move_to_the_end():
    assert add_to_pool([1, 2, 3], [2, 5]) == [1, 3, 2, 5]
    assert add_to_pool(None, [4]) == [4]
    assert add_to_pool([4], []) == [4]


def test_the_pool_keeps_only_the_latest_fifteen():
    pool = add_to_pool(list(range(POOL_SIZE)), [100, 101])
    assert len(pool) == POOL_SIZE
    assert pool[-2:] == [100, 101] and pool[0] == 2


@pytest.mark.parametrize("junk", ["x", -1, 4.5, "1e3", None, True, "3; rm -rf /", [1]])
def test_anything_but_a_non_negative_integer_is_dropped(junk):
    assert as_ids([junk, 7]) == [7]


def test_integers_of_every_kind_are_accepted():
    assert as_ids(["3", np.int64(5), 6, " 8 "]) == [3, 5, 6, 8]


def test_focus_is_an_existing_instance_or_none():
    assert focus_id("7", 10) == 7
    assert focus_id(10, 10) is None
    assert focus_id("seven", 10) is None
    assert focus_id(None, 10) is None


def test_a_click_names_the_instance_but_a_redraw_does_not():
    from dashboard.pool import clicked_id

    assert clicked_id({"type": "thumb", "index": 42}, 1, "thumb") == 42
    assert clicked_id({"type": "thumb", "index": 42}, 0, "thumb") is None  # freshly drawn
    assert clicked_id({"type": "other", "index": 42}, 1, "thumb") is None
    assert clicked_id("thumb", 1, "thumb") is None
    assert clicked_id({"type": "thumb", "index": "x"}, 1, "thumb") is None


def test_a_view_sends_its_content_the_first_time_its_tab_is_shown_only():
    from callbacks.common import first_open
    from layouts import ids

    assert first_open(ids.TAB_PREVIEW, ids.TAB_PREVIEW, False)
    assert first_open(ids.TAB_PREVIEW, ids.TAB_PREVIEW, None)
    assert not first_open(ids.TAB_PREVIEW, ids.TAB_PREVIEW, True)
    assert not first_open(ids.TAB_ANALYSIS, ids.TAB_PREVIEW, False)
