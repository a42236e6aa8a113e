"""The suite's own scheduling (tests/conftest.py): the long files it deals first exist."""

from __future__ import annotations

from conftest import LONG_FILES, REPO


def test_every_long_file_is_one_test_file_of_the_suite():
    """A renamed or moved file would silently drop out of LONG_FILES' order (the ordering
    matches file names), so the suite under ``-n auto`` would start it late again."""
    names = [p.name for p in (REPO / "tests").rglob("test_*.py")]
    for name in LONG_FILES:
        assert names.count(name) == 1, name
