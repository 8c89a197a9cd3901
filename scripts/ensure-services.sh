#!/usr/bin/env bash
# Start PostgreSQL, Redis and RabbitMQ if they are installed but down; stop with a clear
# message naming the missing package otherwise. Idempotent: running services are left alone.
set -u

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds
  for _ in $(seq 1 $(( $2 * 5 ))); do up "$1" && return 0; sleep 0.2; done
  return 1
}

fail=0

if ! up 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    wait_port 5432 30 || { echo "PostgreSQL did not come up on 127.0.0.1:5432"; fail=1; }
  else
    echo "PostgreSQL is not installed: apt-get install postgresql (trust auth for 127.0.0.1), or set ARBBOT_DATABASE_URL"; fail=1
  fi
fi

if ! up 6379; then
  if command -v redis-server >/dev/null; then
    echo "starting Redis..."
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_port 6379 15 || { echo "Redis did not come up on 127.0.0.1:6379"; fail=1; }
  else
    echo "Redis is not installed: apt-get install redis-server, or set ARBBOT_REDIS_URL"; fail=1
  fi
fi

if ! up 5672; then
  if command -v rabbitmq-server >/dev/null; then
    echo "starting RabbitMQ (this takes a few seconds)..."
    rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_port 5672 90 || { echo "RabbitMQ did not come up on 127.0.0.1:5672"; fail=1; }
  else
    echo "RabbitMQ is not installed: apt-get install rabbitmq-server, or set ARBBOT_BROKER_URL"; fail=1
  fi
fi

# nginx for `make load-web` (the console through infrastructure/nginx/nginx.conf); the
# package only: RUNLEVEL=1 keeps its init script from starting a daemon on port 80, the
# load test runs its own nginx on 127.0.0.1.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing nginx-light (for make load-web)..."
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1; } \
    || echo "nginx-light could not be installed: make load-web needs it (the rest does not)"
fi

if [ "$fail" = 0 ] && up 5432; then
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='arbbot'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE arbbot" >/dev/null 2>&1 || true
fi
exit $fail
