"""The console's continuous aggregate where TimescaleDB exists: opportunities per minute and
chain (``console_opportunities_1m``), refreshed every minute with real-time aggregation on
top (``materialized_only = false``: the newest minute is counted from the table), which the
opportunities-per-second chart reads for windows of a minute's buckets or wider
(``selectors.console_series``).

On plain PostgreSQL (no ``timescaledb`` in ``pg_available_extensions``, see
``0002_timescale``) this is a no-op: the chart runs the same bucketed count on the table,
bounded by its window on the indexed ``created_at``. Executions are a hypertable on an
integer dimension (``block_number``), which a time-bucketed aggregate cannot use; their
charts read the table the same bounded way.

``CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous)`` cannot run inside a
transaction, hence ``atomic = False``.
"""

from django.db import migrations

VIEW = "console_opportunities_1m"


def _is_hypertable(cursor, table: str) -> bool:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if cursor.fetchone() is None:
        return False
    cursor.execute("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s", [table])
    return cursor.fetchone() is not None


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if not _is_hypertable(cursor, "core_opportunity"):
            return
        cursor.execute(
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {VIEW} "
            "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS "
            "SELECT time_bucket(INTERVAL '1 minute', created_at) AS bucket, chain_id, count(*) AS n "
            "FROM core_opportunity GROUP BY bucket, chain_id WITH NO DATA"
        )
        cursor.execute(
            f"SELECT add_continuous_aggregate_policy('{VIEW}', start_offset => INTERVAL '8 days', "
            "end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true)"
        )


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _is_hypertable(cursor, "core_opportunity"):
            cursor.execute(f"DROP MATERIALIZED VIEW IF EXISTS {VIEW}")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("core", "0011_model_version")]
    operations = [migrations.RunPython(forwards, backwards)]
