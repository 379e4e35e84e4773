"""The schema comes only from Alembic, on both databases, and matches the models."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect, text

from db import migrate
from db.base import Base
from tests.db.conftest import Backend

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "guilds",
    "guild_channels",
    "pages",
    "colorings",
    "votes",
    "member_versions",
    "training_runs",
    "duels",
    "duel_votes",
    "rate_limit_hits",
}


async def _tables(engine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _diff(engine, metadata: MetaData) -> list:
    def run(conn):
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with engine.connect() as conn:
        return await conn.run_sync(run)


async def test_upgrade_from_empty_then_downgrade_to_base_and_back(backend: Backend) -> None:
    engine = backend.engine()
    try:
        assert await _tables(engine) == set()
        assert await migrate.current_revision(engine) is None

        await migrate.upgrade(engine, "head")
        assert await migrate.current_revision(engine) == migrate.head_revision()
        assert await _tables(engine) == TABLES | {"alembic_version"}

        await migrate.upgrade(engine, "head")  # idempotent
        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None
        assert await _tables(engine) <= {"alembic_version"}

        await migrate.upgrade(engine, "head")
        assert await _tables(engine) == TABLES | {"alembic_version"}
    finally:
        await engine.dispose()


_UPGRADE_SCRIPT = """
import asyncio, json, sys
from db import migrate
from db.engine import create_engine
engine = create_engine(sys.argv[1], **json.loads(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()  # "go": start together with the test's own upgrades
asyncio.run(migrate.upgrade(engine))
"""


async def test_dropping_unused_guild_columns_keeps_guilds_and_their_pages(
    backend: Backend,
) -> None:
    # On SQLite the drop rebuilds `guilds`, the parent of pages and channels.
    engine = backend.engine()
    try:
        await migrate.upgrade(engine, "0002_duels_rate_limits")
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO guilds (id, name, default_strength, settings, created_at, "
                "updated_at) VALUES (7, 'Family', 1.5, '{\"gallery\": true}', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                "INSERT INTO pages (sha256, guild_id, source, size_bytes, created_at) "
                "VALUES ('ab', 7, 'cli', 1, CURRENT_TIMESTAMP)"))
        await migrate.upgrade(engine, "head")
        async with engine.connect() as conn:
            guild = (await conn.execute(text("SELECT name, settings FROM guilds"))).one()
            pages = (await conn.execute(text("SELECT guild_id FROM pages"))).all()
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("guilds")})
        settings = guild[1] if isinstance(guild[1], dict) else json.loads(guild[1])
        assert guild[0] == "Family" and settings == {"gallery": True}
        assert pages == [(7,)]
        assert not columns & {"default_strength", "default_fill", "default_members"}
    finally:
        await engine.dispose()


async def test_an_upgrade_is_one_transaction(tmp_path: Path) -> None:
    # Committed revision by revision (Alembic's way on SQLite), a second process that
    # waited for the lock would run the remaining revisions too, and this one would then
    # run them again: "table ... already exists".
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(Engine, "commit", count)
    try:
        await migrate.upgrade(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    finally:
        event.remove(Engine, "commit", count)
    assert len(commits) == 1


async def test_upgrades_at_once_in_two_processes_and_in_one(backend: Backend) -> None:
    # The bot and the trainer start together: one migrates, the others find it done.
    other_process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _UPGRADE_SCRIPT,
        backend.url,
        json.dumps(backend.engine_kwargs),
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    first, second = backend.engine(), backend.engine()
    try:
        assert await asyncio.wait_for(other_process.stdout.readline(), 120) == b"ready\n"
        other_process.stdin.write(b"go\n")
        await other_process.stdin.drain()
        await asyncio.gather(migrate.upgrade(first), migrate.upgrade(second))
        _, stderr = await asyncio.wait_for(other_process.communicate(), 120)
        assert other_process.returncode == 0, stderr.decode()
        assert await migrate.current_revision(first) == migrate.head_revision()
        assert await _tables(first) == TABLES | {"alembic_version"}
    finally:
        await first.dispose()
        await second.dispose()


async def test_models_and_migrations_agree(backend: Backend) -> None:
    engine = backend.engine()
    try:
        await migrate.upgrade(engine, "head")
        assert await _diff(engine, Base.metadata) == []
    finally:
        await engine.dispose()


async def test_autogenerate_check_sees_a_model_change(backend: Backend) -> None:
    # The check above can fail: a column the migrations lack shows up as a diff.
    engine = backend.engine()
    try:
        await migrate.upgrade(engine, "head")
        changed = MetaData(naming_convention=Base.metadata.naming_convention)
        for table in Base.metadata.sorted_tables:
            table.to_metadata(changed)
        Table("votes", changed, Column("weight", Integer), extend_existing=True)
        diff = await _diff(engine, changed)
        assert [d[0] for d in diff] == ["add_column"]
        assert diff[0][3].name == "weight"
    finally:
        await engine.dispose()


async def test_live_vote_index_is_partial_and_unique(backend: Backend) -> None:
    engine = backend.engine()
    try:
        await migrate.upgrade(engine, "head")
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("votes"))
        live = next(i for i in indexes if i["name"] == "uq_votes_live_user_page")
        assert live["unique"]
        assert live["column_names"] == ["user_id", "page_id"]
        where = live.get("dialect_options", {}).get(f"{backend.name}_where")
        assert where is not None and "removed_at is null" in str(where).lower()
    finally:
        await engine.dispose()


def test_cli_upgrade_works_from_any_directory(tmp_path: Path, monkeypatch, capsys) -> None:
    from colorbot.cli import main

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("COLORBOT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)

    assert main(["db", "current"]) == 1  # nothing there yet: behind head
    assert main(["db", "upgrade"]) == 0
    assert f"at revision {migrate.head_revision()}" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert (tmp_path / "data" / "colorbot.sqlite3").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing written to the working directory
    assert main(["db", "downgrade", "base"]) == 0
    assert main(["db", "current"]) == 1


async def test_sqlite_table_rebuild_in_a_migration_keeps_child_rows(tmp_path: Path) -> None:
    # Batch migrations rebuild a SQLite table (copy, drop, rename). With foreign keys
    # on, dropping `pages` would cascade-delete every coloring and vote.
    import sqlalchemy as sa
    from alembic.operations import Operations

    from db import Database
    from tests.db.helpers import colorings_of, posted_page

    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}", store_dir=tmp_path / "store")
    try:
        await db.upgrade()
        page_id, _ = await posted_page(db, message_id=1, reply_id=2)
        await db.cast_vote(2, "😀", 3)

        def rebuild_pages(connection) -> int:
            operations = Operations(MigrationContext.configure(connection))
            with operations.batch_alter_table("pages", recreate="always") as batch:
                batch.add_column(sa.Column("note", sa.Text()))
            return connection.exec_driver_sql("PRAGMA foreign_keys").scalar()

        assert await migrate._with_connection(db.engine, rebuild_pages) == 0
        assert [v.page_id for v in await db.live_votes()] == [page_id]
        assert len(await colorings_of(db, page_id)) == 4
        async with db.engine.connect() as conn:  # ordinary connections: keys on
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await db.close()
