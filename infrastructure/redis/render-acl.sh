#!/bin/sh
# Renders Redis's ACL file from the roles in users.acl and each role's password:
#   render-acl.sh [--prefix PREFIX] RULES OUT
# The password of user <name> comes from $REDIS_PASSWORD_<NAME> (upper case) or the file
# $REDIS_SECRETS_DIR/<name> (a mounted secret, default /run/secrets/redis); a user with
# neither gets none, so nobody can log in as it. --prefix rewrites the `arbbot:` key
# patterns for a fleet with another ARBBOT_REDIS_PREFIX. The output is 0600: it holds the
# passwords in clear (Redis hashes them in memory).
set -eu
prefix=arbbot
if [ "${1:-}" = "--prefix" ]; then prefix=$2; shift 2; fi
rules=$1
out=$2
secrets=${REDIS_SECRETS_DIR:-/run/secrets/redis}
umask 077
: > "$out"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    "user "*)
      name=$(printf '%s\n' "$line" | cut -d' ' -f2)
      var=REDIS_PASSWORD_$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')
      eval "pw=\${$var:-}"
      if [ -z "$pw" ] && [ -r "$secrets/$name" ]; then pw=$(cat "$secrets/$name"); fi
      line=$(printf '%s\n' "$line" | sed "s/~arbbot:/~${prefix}:/g")
      case "$pw" in
        *" "*) echo "render-acl: the password of $name contains a space" >&2; exit 1 ;;
      esac
      if [ -n "$pw" ]; then line="$line >$pw"; fi
      printf '%s\n' "$line" >> "$out" ;;
  esac
done < "$rules"
