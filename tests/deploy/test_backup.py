"""Backups: ``deployment/backup/pg-backup.sh`` dumps a scratch database on the machine's
PostgreSQL, the database is dropped, ``pg-restore.sh`` restores the dump into a new one,
and every table has its rows back (counts and contents); retention deletes old dumps but
never the newest; a failed dump leaves no file that looks like a backup. The CronJobs and
the compose service run the same script (their copies are checked equal)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import yaml

from tests.deploy.support import REPO, by_kind, helm_objects, kustomize

BACKUP = REPO / "deployment" / "backup" / "pg-backup.sh"
RESTORE = REPO / "deployment" / "backup" / "pg-restore.sh"
SERVER = os.environ.get("ARBBOT_BACKUP_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
TABLES = ("chain", "opportunity", "execution")


def url(db: str) -> str:
    return f"{SERVER}/{db}"


def admin(sql: str) -> None:
    with psycopg.connect(url("postgres"), autocommit=True) as c:
        c.execute(sql)


@pytest.fixture()
def scratch() -> Iterator[str]:
    if not shutil.which("pg_dump"):
        pytest.skip("no pg_dump here")
    name = f"arbbot_backup_{uuid.uuid4().hex[:10]}"
    admin(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(url(name), autocommit=True) as c:
            c.execute("""
                CREATE TABLE chain (id serial PRIMARY KEY, chain_id bigint UNIQUE NOT NULL, name text NOT NULL);
                CREATE TABLE opportunity (
                    id bigserial PRIMARY KEY, chain_id bigint REFERENCES chain (chain_id),
                    profit_wei numeric(78, 0) NOT NULL, path jsonb NOT NULL, raw bytea,
                    observed_at timestamptz NOT NULL DEFAULT now());
                CREATE INDEX ON opportunity (chain_id, observed_at);
                CREATE TABLE execution (id bigserial PRIMARY KEY, opportunity_id bigint REFERENCES opportunity (id),
                                        tx_hash text UNIQUE, nonce integer);
                INSERT INTO chain (chain_id, name) VALUES (1, 'mainnet'), (31337, 'devnet');
                INSERT INTO opportunity (chain_id, profit_wei, path, raw)
                    SELECT 31337, (2::numeric ^ 255 + g)::numeric(78, 0), jsonb_build_object('hops', g % 5),
                           decode(md5(g::text), 'hex')
                    FROM generate_series(1, 5000) g;
                INSERT INTO execution (opportunity_id, tx_hash, nonce)
                    SELECT g, '0x' || md5(g::text), g FROM generate_series(1, 1200) g;
            """)
        yield name
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def contents(db: str) -> dict[str, tuple[int, str]]:
    """Each table's row count and a digest of its rows in key order."""
    out = {}
    with psycopg.connect(url(db)) as c:
        for t in TABLES:
            n, digest = c.execute(f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM {t} t").fetchone()
            out[t] = (n, digest)
        out["opportunity id sequence"] = (c.execute("SELECT last_value FROM opportunity_id_seq").fetchone()[0], "")
    return out


def run(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(script), *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def test_dump_drop_restore_gives_every_row_back(scratch: str, tmp_path: Path) -> None:
    before = contents(scratch)
    assert before["opportunity"][0] == 5000 and before["execution"][0] == 1200
    done = run(BACKUP, env={"ARBBOT_DATABASE_URL": url(scratch), "BACKUP_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    (dump,) = tmp_path.glob("arbbot-*.dump")
    assert dump.stat().st_mode & 0o077 == 0, "a dump holds the data: owner-only"

    admin(f'DROP DATABASE "{scratch}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{scratch}"')
    assert contents_or_none(scratch) is None, "dropped: the tables are gone"
    restored = run(RESTORE, str(dump), url(scratch), env={})
    assert restored.returncode == 0, restored.stderr
    assert contents(scratch) == before


def contents_or_none(db: str) -> dict[str, tuple[int, str]] | None:
    try:
        return contents(db)
    except psycopg.errors.UndefinedTable:
        return None


def test_retention_keeps_the_newest_and_drops_the_old(scratch: str, tmp_path: Path) -> None:
    old = time.time() - 30 * 86400
    for i in range(4):
        f = tmp_path / f"arbbot-2020010{i}T000000Z.dump"
        f.write_bytes(b"old")
        os.utime(f, (old + i, old + i))
    keep = tmp_path / "unrelated.txt"
    keep.write_text("not a dump")
    env = {"ARBBOT_DATABASE_URL": url(scratch), "BACKUP_DIR": str(tmp_path), "BACKUP_KEEP_DAYS": "14",
           "BACKUP_KEEP_MIN": "2"}
    assert run(BACKUP, env=env).returncode == 0
    left = sorted(p.name for p in tmp_path.glob("arbbot-*.dump"))
    assert len(left) == 2 and left[0] == "arbbot-20200103T000000Z.dump", left  # the new one + the newest old
    assert keep.exists()


def test_a_failed_dump_leaves_no_backup(tmp_path: Path) -> None:
    done = run(BACKUP, env={"ARBBOT_DATABASE_URL": url(f"no_such_db_{uuid.uuid4().hex[:6]}"),
                            "BACKUP_DIR": str(tmp_path)})
    assert done.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_the_scheduled_jobs_run_this_script() -> None:
    text = BACKUP.read_text()
    assert (REPO / "k8s/base/backup/pg-backup.sh").read_text() == text
    assert (REPO / "helm/arbbot/files/pg-backup.sh").read_text() == text
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = compose["services"]["backup"]
    assert any(v.startswith("./deployment/backup/pg-backup.sh:") for v in svc["volumes"])
    assert any(v.startswith("backups:") for v in svc["volumes"])
    for objs in (kustomize("k8s/overlays/production"), helm_objects({})):
        (job,) = by_kind(objs, "CronJob")
        spec = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert "/backups" in mounts
        claim = next(v for v in spec["volumes"] if "persistentVolumeClaim" in v)
        assert claim
