"""Make Opportunity and Execution TimescaleDB hypertables where the extension exists.

On plain PostgreSQL (no ``timescaledb`` in ``pg_available_extensions``) this is a no-op,
so the same migrations run everywhere. A hypertable's unique indexes must contain its
partitioning column: Opportunity is partitioned on ``created_at`` (its primary key becomes
``(id, created_at)``); Execution on ``block_number`` (an integer dimension), so the
``execution_once`` idempotency constraint (chain, block, path) stays enforceable.
"""

from django.db import migrations


def _has_timescale(cursor) -> bool:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return cursor.fetchone() is not None


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if not _has_timescale(cursor):
            return
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        cursor.execute("ALTER TABLE core_opportunity DROP CONSTRAINT core_opportunity_pkey")
        cursor.execute("ALTER TABLE core_opportunity ADD PRIMARY KEY (id, created_at)")
        cursor.execute("SELECT create_hypertable('core_opportunity', 'created_at', migrate_data => true)")
        cursor.execute("ALTER TABLE core_execution DROP CONSTRAINT core_execution_pkey")
        cursor.execute("ALTER TABLE core_execution ADD PRIMARY KEY (id, block_number)")
        cursor.execute(
            "SELECT create_hypertable('core_execution', 'block_number', "
            "chunk_time_interval => 100000, migrate_data => true)"
        )


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
