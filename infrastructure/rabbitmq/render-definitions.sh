#!/bin/sh
# Renders definitions.json with each user's password: every "@RABBITMQ_PASSWORD_<ROLE>@"
# becomes $RABBITMQ_PASSWORD_<ROLE>, or the file $RABBITMQ_SECRETS_DIR/<role> (a mounted
# secret, default /run/secrets/rabbitmq). A password that is not given stops the start:
# a user with a known placeholder password would be worse than none.
#   render-definitions.sh IN OUT
set -eu
in=$1
out=$2
secrets=${RABBITMQ_SECRETS_DIR:-/run/secrets/rabbitmq}
umask 077
tmp=$out.tmp
cp "$in" "$tmp"
for var in $(grep -o '@RABBITMQ_PASSWORD_[A-Z_]*@' "$in" | tr -d @ | sort -u); do
  eval "pw=\${$var:-}"
  role=$(printf '%s' "${var#RABBITMQ_PASSWORD_}" | tr 'A-Z_' 'a-z-')
  if [ -z "$pw" ] && [ -r "$secrets/$role" ]; then pw=$(cat "$secrets/$role"); fi
  if [ -z "$pw" ]; then echo "render-definitions: no password for $role (set $var)" >&2; rm -f "$tmp"; exit 1; fi
  case "$pw" in *[\"\\/\&\|]*) echo "render-definitions: the password of $role has a character JSON or sed would change (\" \\ / & |)" >&2; rm -f "$tmp"; exit 1 ;; esac
  sed -i "s|@$var@|$pw|g" "$tmp"
done
mv "$tmp" "$out"
