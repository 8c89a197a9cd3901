-- Runs once, on the first boot of an empty data directory
-- (/docker-entrypoint-initdb.d in the timescale/timescaledb image).
-- Enables TimescaleDB in the arbbot database; the Django migrations create the
-- hypertables and continuous aggregates (and also run on plain PostgreSQL, where the
-- extension is absent).
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
