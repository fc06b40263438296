"""`leadrelay serve` and `leadrelay apikey`, run as users run them: the installed command in a
new process, on a SQLite file in a fresh folder."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .cli import TIMEOUT, Run, assert_clean_refusal, clean_environment, leadrelay_executable


def _key(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_an_api_key_is_shown_once_listed_by_its_first_characters_and_revoked(leadrelay: Run) -> None:
    key = _key(leadrelay("apikey", "create", "--name", "website", "--scope", "write"))
    assert key.startswith("lr_") and len(key) > 40

    listed = leadrelay("apikey", "list")
    assert listed.returncode == 0 and "website" in listed.stdout and key[:10] in listed.stdout
    assert key not in listed.stdout

    revoked = leadrelay("apikey", "revoke", key[:10])
    assert revoked.returncode == 0 and "Revoked key 1 (website)" in revoked.stdout
    assert_clean_refusal(leadrelay("apikey", "revoke", "nothing"), "no API key with id or prefix 'nothing'")


def test_an_api_key_needs_a_known_scope(leadrelay: Run) -> None:
    assert_clean_refusal(leadrelay("apikey", "create", "--name", "x", "--scope", "everything"),
                         "scope: expected one of write, admin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_tracking_and_rest_calls_until_stopped(leadrelay: Run, tmp_path: Path) -> None:
    write_key = _key(leadrelay("apikey", "create", "--name", "website"))
    admin_key = _key(leadrelay("apikey", "create", "--name", "admin", "--scope", "admin"))
    port = _free_port()
    server = subprocess.Popen(
        [leadrelay_executable(), "serve", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=clean_environment(f"sqlite:///{tmp_path / 'leadrelay.db'}"),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                httpx.get(url + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the server did not start")
                time.sleep(0.1)
        tracked = httpx.post(url + "/v1/identify", auth=(write_key, ""), timeout=10,
                             json={"userId": "u-1", "traits": {"email": "ann@acme.io", "industry": "software"}})
        found = httpx.get(url + "/api/v1/leads", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=TIMEOUT)

    assert tracked.status_code == 200, tracked.text
    assert [(item["email"], item["scores"]["fit"]) for item in found.json()["items"]] == [("ann@acme.io", 25)]
    assert f"LeadRelay on http://127.0.0.1:{port}" in output
    assert "Application shutdown complete" in output and "Traceback" not in output  # stopped cleanly
