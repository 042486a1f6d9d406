"""The next release's first migration, made up for the rolling-upgrade tests: additive, as the rule in README.md
(High availability) wants for one release (a nullable column and a table), applied with this release's
migrations plus that one, so that the store ends at a revision this version's code does not know.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from broker.store.db import MIGRATIONS, alembic_config, upgrade

REVISION = "9001_next_release"

_MIGRATION = '''"""the next release's additive migration (tests only)"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_release_note", sa.Text(), nullable=True))
    op.create_table("next_release_things", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("next_release_things")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("next_release_note")
'''


def migrate_ahead(engine: Engine) -> None:
    """Bring the store to this release's head and then one migration further, as the next release's
    `hmc-broker db upgrade` would."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with tempfile.TemporaryDirectory(prefix="hmc-next-release-") as folder:
        scripts = Path(folder) / "migrations"
        shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
        (scripts / "versions" / f"{REVISION}.py").write_text(_MIGRATION.format(revision=REVISION, down=head))
        upgrade(engine, scripts=scripts)


def drop_extra(engine: Engine) -> None:
    """Drop what the made-up migration added beyond the broker's tables (the session's PostgreSQL database is
    shared by the store tests, which empty only the broker's tables)."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS next_release_things"))
