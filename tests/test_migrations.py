"""Schema migrations (Alembic) on SQLite and PostgreSQL: they build exactly the models' schema, and
they adopt a database made before migrations existed without losing its rows."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from server.config import Config
from server.db import MIGRATIONS, Base, Experience, migrate, open_engine


def _ours(name, type_, _parents) -> bool:
    """Our tables, not the job engine's (procrastinate's schema comes from its package)."""
    return not (type_ == "table" and name.startswith("procrastinate_"))


def _differences(connection) -> list:
    return compare_metadata(MigrationContext.configure(connection, opts={"include_name": _ours}), Base.metadata)


def _revision(connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_to(connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _head() -> str:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


async def test_migrations_build_exactly_the_models_schema(tmp_path, database_url):
    engine, _ = open_engine(Config(data_dir=tmp_path, database_url=database_url).db_url)
    try:
        await migrate(engine)
        await migrate(engine)  # a second run changes nothing
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert await conn.run_sync(_revision) == _head()
    finally:
        await engine.dispose()


async def test_a_database_from_before_migrations_is_adopted_with_its_rows(tmp_path, database_url):
    engine, sessionmaker = open_engine(Config(data_dir=tmp_path, database_url=database_url).db_url)
    try:
        # What the server made before migrations: the first migration's tables but its newest
        # (token_revocations), and no version table.
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0001")
            await conn.execute(sa.text("DROP TABLE token_revocations"))
            await conn.execute(sa.text("DROP TABLE alembic_version"))
        async with sessionmaker.begin() as db:
            await db.execute(sa.text("INSERT INTO experiences (id, name, key_hash, created_at, settings) "
                                     "VALUES ('exp_old', 'kept', :k, 1.0, '{}')"), {"k": "k" * 64})
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert await conn.run_sync(_revision) == _head()
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert "token_revocations" in tables
        async with sessionmaker() as db:
            assert (await db.get(Experience, "exp_old")).name == "kept"
    finally:
        await engine.dispose()
