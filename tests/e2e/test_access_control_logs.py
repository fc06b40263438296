"""Secrets are never logged: a real `leadrelay serve` process, its whole output captured, while
keys are created and used (right and wrong, as Bearer and as HTTP Basic, in the body of a tracking
call), people log in with right and wrong passwords, a session calls the API, and a webhook is made
with its signing secret. No key, password, session or CSRF token, nor webhook secret, appears."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .cli import TIMEOUT, Run, clean_environment, leadrelay_executable

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "not-the-password-4711"
WRONG_KEY = "lr_wrong-key-that-should-never-be-printed-123"


def _key(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_secret_appears_in_the_servers_output(leadrelay: Run, tmp_path: Path) -> None:
    assert leadrelay("user", "create", "ann@leadrelay.example", "--role", "admin", "--password", PASSWORD).returncode == 0
    write_key = _key(leadrelay("apikey", "create", "--name", "website"))
    admin_key = _key(leadrelay("apikey", "create", "--name", "admin", "--scope", "admin"))
    user_key = _key(leadrelay("apikey", "create", "--name", "ann", "--user", "ann@leadrelay.example"))
    port = _free_port()
    server = subprocess.Popen(
        [leadrelay_executable(), "serve", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=clean_environment(f"sqlite:///{tmp_path / 'leadrelay.db'}"),
    )
    secrets = [PASSWORD, WRONG_PASSWORD, WRONG_KEY, write_key, admin_key, user_key]
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the server did not start")
                time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=10) as client:
            bearer = {"Authorization": f"Bearer {admin_key}"}
            assert client.post("/v1/track", auth=(write_key, ""), json={"userId": "u", "event": "x"}).status_code == 200
            client.post("/v1/batch", json={"writeKey": write_key, "batch": [{"type": "track"}]})  # refused, logged
            client.post("/v1/track", auth=(WRONG_KEY, ""), json={"userId": "u", "event": "x"})
            assert client.get("/api/v1/leads", headers=bearer).status_code == 200
            assert client.get("/api/v1/audit", headers={"Authorization": f"Bearer {user_key}"}).status_code == 200
            client.get("/api/v1/leads", headers={"Authorization": f"Bearer {WRONG_KEY}"})
            client.get("/api/v1/leads", headers={"Authorization": f"Bearer {write_key}"})
            client.get(f"/api/v1/leads?key={WRONG_KEY}", headers=bearer)
            webhook = client.post("/api/v1/webhooks", headers=bearer,
                                  json={"name": "crm", "url": "https://crm.example/hook", "events": ["deal.opened"]})
            assert webhook.status_code == 201, webhook.text
            secrets.append(webhook.json()["secret"])
        with httpx.Client(base_url=url, timeout=10, headers={"Accept": "text/html"}) as browser:
            for password in (WRONG_PASSWORD, PASSWORD):
                token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text).group(1)  # type: ignore[union-attr]
                browser.post("/login", data={"email": "ann@leadrelay.example", "password": password,
                                             "csrf_token": token})
            session = browser.cookies["leadrelay_session"]
            csrf = re.search(r'data-csrf="([^"]+)"', browser.get("/board").text).group(1)  # type: ignore[union-attr]
            assert browser.get("/api/v1/audit", headers={"Accept": "application/json"}).status_code == 200
            browser.post("/api/v1/leads/1/move", json={"to": "nowhere"}, headers={"X-CSRF-Token": csrf})
            secrets += [session, csrf]
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=TIMEOUT)

    assert "refused message" in output  # the server did log, and about these very calls
    leaked = [secret[:12] + "…" for secret in secrets if secret in output]
    assert not leaked, f"secrets in the server's output: {leaked}"
