#!/bin/sh
# One backup of the arbbot database, then retention. Run by the compose `backup` service
# (in a loop), the Kubernetes CronJob and the Helm chart's CronJob (copies of this file:
# k8s/base/backup/pg-backup.sh, helm/arbbot/files/pg-backup.sh; tests/deploy checks they
# are equal), and by hand.
#
#   ARBBOT_DATABASE_URL  the database (postgresql://user:password@host:port/db); or PG* vars
#   BACKUP_DIR           where dumps go (default /backups): a volume
#   BACKUP_KEEP_DAYS     dumps older than this many days are deleted (default 14) ...
#   BACKUP_KEEP_MIN      ... but never the newest this many (default 3)
#
# A dump is written as <name>.partial and renamed only once pg_dump succeeded and
# pg_restore can read its table of contents: a file named arbbot-*.dump is always whole.
# Custom format (-Fc): compressed, restored table by table (pg-restore.sh).
set -eu
dir=${BACKUP_DIR:-/backups}
keep_days=${BACKUP_KEEP_DAYS:-14}
keep_min=${BACKUP_KEEP_MIN:-3}
mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$dir/arbbot-$stamp.dump"
tmp="$out.partial"
trap 'rm -f "$tmp"' EXIT
umask 077
if [ -n "${ARBBOT_DATABASE_URL:-}" ]; then
  pg_dump --format=custom --no-owner --no-privileges --file="$tmp" --dbname="$ARBBOT_DATABASE_URL"
else
  pg_dump --format=custom --no-owner --no-privileges --file="$tmp"
fi
pg_restore --list "$tmp" > /dev/null
mv "$tmp" "$out"
echo "backup: wrote $out ($(wc -c < "$out") bytes)"

# Retention: the newest $keep_min always stay; of the rest, those older than $keep_days go.
ls -1t "$dir"/arbbot-*.dump 2>/dev/null | tail -n +"$((keep_min + 1))" | while IFS= read -r old; do
  if [ -n "$(find "$old" -mtime +"$keep_days" 2>/dev/null)" ]; then
    rm -f "$old"
    echo "backup: removed $old (older than $keep_days days)"
  fi
done
