"""The newest migration, as the code names it without starting Alembic, is the head of
the migration scripts."""

from msgtrail.db import engine


def test_head_is_the_scripts_head() -> None:
    assert engine._heads() == {engine.HEAD}
