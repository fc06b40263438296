"""`leadrelay backup` / `leadrelay restore` on the embedded database, as users run them: backups
are taken while `leadrelay serve` is storing tracking batches from several clients; each backup is
undamaged and consistent (every batch in it whole, every batch acknowledged before it began in it,
one lead per batch), and a restore gives back exactly what the backup holds. On PostgreSQL the
commands say to use pg_dump / pg_restore."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections import Counter
from pathlib import Path

from .cli import assert_clean_refusal, clean_environment, leadrelay_executable
from .test_crash_safety import BATCH, CLIENTS, Clients, deployed
from .test_outbox_crash import Deployment, eventually, server

BACKUPS = 2


def leadrelay(database_url: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([leadrelay_executable(), *args], check=False, cwd=folder, env=clean_environment(database_url),
                          capture_output=True, text=True, encoding="utf-8", timeout=120, stdin=subprocess.DEVNULL)


def contents(path: Path) -> tuple[Counter[str], dict[str, int]]:
    """A database file's events by batch, and its row counts."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        batches = Counter(row[0].rsplit("-", 1)[0] for row in connection.execute("SELECT message_id FROM events"))
        counts = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("leads", "events", "identities", "stage_changes", "deals", "outbox")}
    finally:
        connection.close()
    return batches, counts


def test_backups_taken_while_the_server_ingests_are_consistent_and_restore_exactly(tmp_path: Path) -> None:
    with deployed(f"sqlite:///{tmp_path / 'leadrelay.db'}", tmp_path) as deployment:
        _backups_while_ingesting(deployment)


def _backups_while_ingesting(deployment: Deployment) -> None:
    folder = deployment.folder
    taken: list[tuple[Path, set[str]]] = []
    with server(deployment, worker_in_server="false") as (serving, url):
        clients = Clients(url, deployment.write_key, run=0)
        threads = [threading.Thread(target=clients.post, args=(client,), daemon=True) for client in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            for number in range(BACKUPS):
                eventually(lambda n=number: len(clients.acknowledged) >= 5 * (n + 1), "batches acknowledged")
                before = set(clients.acknowledged)  # committed before the backup began
                target = folder / f"backup-{number}.db"
                done = leadrelay(deployment.database_url, folder, "backup", str(target))
                assert done.returncode == 0 and "integrity checked" in " ".join(done.stdout.split()), done.stderr
                taken.append((target, before))
        finally:
            clients.stopping.set()
            for thread in threads:
                thread.join(timeout=15)
        assert serving.poll() is None  # the server ran on throughout

    sizes = []
    for target, before in taken:
        batches, counts = contents(target)
        assert set(batches.values()) == {BATCH}, "a batch is in the backup in part"
        assert before <= set(batches), "a batch acknowledged before the backup is not in it"
        assert counts["leads"] == len(batches) and counts["events"] == BATCH * len(batches)
        sizes.append(len(batches))

    restored = folder / "restored.db"
    done = leadrelay(f"sqlite:///{restored}", folder, "restore", str(target), "--yes")
    assert done.returncode == 0 and f"{counts['leads']:,} leads" in " ".join(done.stdout.split()), done.stderr
    assert contents(restored) == (batches, counts)
    assert_clean_refusal(leadrelay(deployment.database_url, folder, "backup", str(folder)), "is a folder")
    assert_clean_refusal(leadrelay(deployment.database_url, folder, "restore", str(target)), "confirm with --yes")
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]  # taken at different moments of the ingest


def test_restore_refuses_a_file_that_is_not_a_leadrelay_backup_and_changes_nothing(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'leadrelay.db'}"
    (tmp_path / "notes.db").write_text("not a database", encoding="utf-8")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE things (id INTEGER)")
    other.close()

    assert_clean_refusal(leadrelay(database, tmp_path, "restore", "notes.db", "--yes"), "not a SQLite database")
    assert_clean_refusal(leadrelay(database, tmp_path, "restore", "other.db", "--yes"), "not a LeadRelay database")
    assert_clean_refusal(leadrelay(database, tmp_path, "restore", "missing.db", "--yes"), "no such file")
    assert not (tmp_path / "leadrelay.db").exists()


def test_on_postgresql_backup_and_restore_say_to_use_pg_dump_and_pg_restore(tmp_path: Path) -> None:
    database = "postgresql://leadrelay@127.0.0.1:5432/leadrelay"
    assert_clean_refusal(leadrelay(database, tmp_path, "backup", "x.db"), "pg_dump")
    (tmp_path / "x.db").write_bytes(b"")
    assert_clean_refusal(leadrelay(database, tmp_path, "restore", "x.db", "--yes"), "pg_restore")
