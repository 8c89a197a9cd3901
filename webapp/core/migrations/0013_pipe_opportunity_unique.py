"""One row per opportunity: (chain, block, block hash, path) unique, the analytics write's
idempotency guard (``services.opportunities_record`` inserts with ON CONFLICT DO NOTHING
instead of reading the batch's keys first).

Rows recorded twice before this (a redelivered batch that raced the old pre-query) are
removed first, the oldest of each kept. On a TimescaleDB hypertable (partitioned on
``created_at``) a unique index must contain the partitioning column, so there the index is
(chain, block, block hash, path, created_at): it still refuses a row written twice in one
statement, but a redelivered batch (written at another ``created_at``) is not caught by it.
"""

from django.db import migrations, models

FIELDS = ["chain_id", "block_number", "block_hash", "path_id"]


def _is_hypertable(cursor) -> bool:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if cursor.fetchone() is None:
        return False
    cursor.execute("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'core_opportunity'")
    return cursor.fetchone() is not None


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    cols = ", ".join(FIELDS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM core_opportunity o USING core_opportunity k WHERE ({', '.join('o.' + c for c in FIELDS)}) "
            f"= ({', '.join('k.' + c for c in FIELDS)}) AND o.id > k.id"
        )
        extra = ", created_at" if _is_hypertable(cursor) else ""
        cursor.execute(f"ALTER TABLE core_opportunity ADD CONSTRAINT opportunity_once UNIQUE ({cols}{extra})")


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ALTER TABLE core_opportunity DROP CONSTRAINT IF EXISTS opportunity_once")


class Migration(migrations.Migration):
    dependencies = [("core", "0012_console_aggregates")]
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.AddConstraint(
                    model_name="opportunity",
                    constraint=models.UniqueConstraint(fields=FIELDS, name="opportunity_once"),
                ),
            ],
        ),
    ]
