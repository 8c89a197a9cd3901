#!/bin/sh
# Restores a dump of pg-backup.sh into a database, which must exist and be empty (create it
# first: `createdb`, or CREATE DATABASE); on TimescaleDB the extension's restore mode is
# switched on around the restore, as its documentation asks.
#   pg-restore.sh DUMP [DATABASE_URL]   (default: $ARBBOT_DATABASE_URL, else $PGDATABASE)
set -eu
dump=$1
url=${2:-${ARBBOT_DATABASE_URL:-${PGDATABASE:?give the database URL}}}
set -- --dbname="$url"
timescale=$(psql "$@" -XAtc "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
if [ "$timescale" = 1 ]; then
  psql "$@" -Xqc "CREATE EXTENSION IF NOT EXISTS timescaledb" -c "SELECT timescaledb_pre_restore()" > /dev/null
fi
pg_restore --no-owner --no-privileges --exit-on-error "$@" "$dump"
if [ "$timescale" = 1 ]; then
  psql "$@" -Xqc "SELECT timescaledb_post_restore()" > /dev/null
fi
echo "restore: $dump restored"
