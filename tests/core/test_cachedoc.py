"""docs/cache.md's artifact table is the one transferviz.cachedoc generates from a built cache.

The tiny cache runs every stage with the demo's architecture and input size, so it writes the
same artifacts, with the same meanings, as the demo cache the table is documented from.
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from transferviz.cachedoc import artifact_table, documented_table, with_table

DOC = REPO / "docs" / "cache.md"


def test_docs_table_is_the_generated_one(tiny_cache):
    generated = artifact_table(tiny_cache)
    assert documented_table(DOC.read_text()) == generated, (
        "docs/cache.md's artifact table is stale; regenerate it with "
        "`python -m transferviz.cachedoc cache/digits --write docs/cache.md`")


def test_with_table_replaces_only_the_table():
    doc = "# t\n\nintro\n\n| path | stage | kind | dtype | meaning |\n| --- |\n| `a` | x |\n\nafter | pipes\n"
    new = "| path | stage | kind | dtype | meaning |\n| --- |\n| `b` | y |"
    assert with_table(doc, new) == "# t\n\nintro\n\n" + new + "\n\nafter | pipes\n"
    assert documented_table(with_table(doc, new)) == new
    with pytest.raises(ValueError, match="no artifact table"):
        documented_table("no table here")
