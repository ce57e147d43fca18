"""``visgate doctor`` / ``client.doctor()``: each check passes or fails with a hint, later checks
that cannot run are skipped with the reason, and no key ever appears in the output.

Servers (all loopback): the emulator, a TLS server with a throwaway CA (trustme), a CONNECT
proxy, a refused port and a server that never answers.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
from typing import Any, Dict, Iterator, List

import pytest
from werkzeug import Request, Response

import visgate_sdk
from tests._servers import Proxy, RawServer, RefusedPort, TLSFiles, https_server, sleep_until_stopped
from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import AsyncClient, Client, DoctorReport

KEY = "vg-doctor-test-key-5d7f9b1a"
ORDER = ["api_key", "base_url", "proxy", "ca_bundle", "dns", "tcp", "tls", "clock", "health", "auth"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(quiet=True) as emu:
        yield emu


def statuses(report: DoctorReport) -> Dict[str, str]:
    return {check.name: check.status for check in report}


def assert_no_key(report: DoctorReport, *keys: str) -> None:
    texts = [str(report), repr(report), json.dumps(report.as_dict())]
    for key in keys:
        assert all(key not in text for text in texts)


def run_cli(args: List[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code = visgate_sdk.main(["doctor", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- against the emulator: everything passes ------------------------------------------------


def test_all_checks_pass_against_the_emulator(emulator: Emulator) -> None:
    with Client(DEMO_API_KEY, base_url=emulator.base_url) as client:
        report = client.doctor()
    assert report.ok, str(report)
    assert [c.name for c in report] == ORDER
    assert statuses(report) == dict.fromkeys(ORDER, "pass") | {"ca_bundle": "skip", "tls": "skip"}
    assert report["dns"].detail == "127.0.0.1 -> 127.0.0.1"
    assert "ms" in report["tcp"].detail and "0.1.0-emulator" in report["health"].detail
    assert "Emulator Organization" in report["auth"].detail
    assert report["api_key"].detail == 'present: %d characters, starts with "vg-"' % len(DEMO_API_KEY)
    assert_no_key(report, DEMO_API_KEY)


def test_cli_text_and_json(emulator: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISGATE_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("VISGATE_BASE_URL", emulator.base_url)
    code, out, _err = run_cli([], capsys)
    assert code == 0 and out.splitlines()[-1] == "all checks passed"
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["PASS"] * 3 + ["SKIP"] + ["PASS"] * 2 + ["SKIP"] + ["PASS"] * 3
    code, out, _err = run_cli(["--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and [c["name"] for c in data["checks"]] == ORDER
    assert set(data["checks"][0]) == {"name", "title", "status", "ok", "detail", "hint"}
    assert DEMO_API_KEY not in out


def test_async_client_doctor(emulator: Emulator) -> None:
    async def main() -> DoctorReport:
        async with AsyncClient(DEMO_API_KEY, base_url=emulator.base_url) as client:
            return await client.doctor()

    report = asyncio.run(main())
    assert report.ok and statuses(report)["auth"] == "pass"


# -- the key -------------------------------------------------------------------------------


def test_rejected_key_fails_auth_with_a_hint(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    bad = "vg-invalid-doctor-0a9b8c"
    code, out, err = run_cli(["--api-key", bad, "--base-url", emulator.base_url], capsys)
    assert code == 1 and bad not in out + err
    with Client(bad, base_url=emulator.base_url) as client:
        report = client.doctor()
    assert not report.ok and statuses(report)["auth"] == "fail" and statuses(report)["health"] == "pass"
    assert "rejected" in report["auth"].detail and "dashboard" in report["auth"].hint
    assert_no_key(report, bad)


@pytest.mark.parametrize(
    "key, detail",
    [("", "no API key"), ("sk-live-provider-1234", 'does not start with "vg-"'), ("vg-abc def-123", "whitespace")],
)
def test_malformed_key_fails_and_auth_is_skipped(emulator: Emulator, key: str, detail: str) -> None:
    with Client(key or None, base_url=emulator.base_url) as client:
        report = client.doctor()
    assert statuses(report)["api_key"] == "fail" and detail in report["api_key"].detail and report["api_key"].hint
    assert statuses(report)["auth"] == "skip" and "API key" in report["auth"].detail
    assert statuses(report)["health"] == "pass"
    assert_no_key(report, *(key.split() if key else []))


def test_key_with_a_line_break_from_the_environment(emulator: Emulator, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISGATE_API_KEY", "vg-broken\nkey-777")
    code, out, _err = run_cli(["--base-url", emulator.base_url], capsys)
    assert code == 1 and "vg-broken" not in out and "key-777" not in out
    assert out.splitlines()[1].split()[:3] == ["FAIL", "API", "key"]


# -- base URL, TCP, timeouts --------------------------------------------------------------


def test_bad_base_url_skips_the_network_checks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run_cli(["--api-key", KEY, "--base-url", "ftp://127.0.0.1/x", "--json"], capsys)
    data = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 1 and data["base_url"]["status"] == "fail" and "VISGATE_BASE_URL" in data["base_url"]["hint"]
    assert all(data[name]["status"] == "skip" for name in ORDER[2:])
    assert KEY not in out


def test_refused_port_fails_tcp_and_skips_the_rest() -> None:
    refused = RefusedPort()
    try:
        with Client(KEY, base_url="http://127.0.0.1:%d/api/v1" % refused.port) as client:
            report = client.doctor(timeout=2)
    finally:
        refused.close()
    assert statuses(report)["dns"] == "pass" and statuses(report)["tcp"] == "fail"
    assert "refused" in report["tcp"].detail and "nothing listens" in report["tcp"].hint
    for name in ("tls", "clock", "health", "auth"):
        assert statuses(report)[name] == "skip" and report[name].detail.startswith("skipped: the ")
    assert all("the TCP connect check" in report[n].detail for n in ("tls", "clock", "health", "auth")), "the root cause"
    assert_no_key(report, KEY)


def test_a_server_that_never_answers_is_bounded_by_the_timeout() -> None:
    with RawServer(lambda conn, server: sleep_until_stopped(server, 30)) as server:
        with Client(KEY, base_url=server.url(), max_retries=0) as client:
            started = time.monotonic()
            report = client.doctor(timeout=0.3)
            took = time.monotonic() - started
    assert took < 5
    assert statuses(report)["tcp"] == "pass"
    assert {statuses(report)[n] for n in ("clock", "health", "auth")} == {"fail"}


def test_clock_skew_is_reported(emulator: Emulator) -> None:
    from tests._servers import http_server

    for server in http_server():
        stale = email.utils.formatdate(time.time() - 3600, usegmt=True)

        def answer(request: Request, stale: str = stale) -> Response:
            return Response(json.dumps({"status": "ok", "version": "x"}), 200, {"Date": stale}, content_type="application/json")

        server.expect_request("/api/v1/health").respond_with_handler(answer)
        server.expect_request("/api/v1/auth/me").respond_with_json({"organization": {"name": "o"}, "role": "r"})
        with Client(KEY, base_url=server.url_for("/api/v1")) as client:
            report = client.doctor()
        assert statuses(report)["clock"] == "fail" and "ahead of" in report["clock"].detail and "NTP" in report["clock"].hint
        assert statuses(report)["health"] == statuses(report)["auth"] == "pass"


# -- TLS with a private CA, and a CONNECT proxy --------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles(str(tmp_path_factory.mktemp("doctor-tls")))


@pytest.fixture(scope="module")
def secure(tls: TLSFiles) -> Iterator[Any]:
    for server in https_server(tls.server_context("localhost", "127.0.0.1")):
        server.expect_request("/api/v1/health").respond_with_json({"status": "ok", "version": "tls-test"})
        server.expect_request("/api/v1/auth/me").respond_with_json({"organization": {"name": "TLS Org"}, "role": "admin"})
        yield server


def secure_url(server: Any) -> str:
    return "https://localhost:%d/api/v1" % server.port


def test_private_ca_passes_with_verify(secure: Any, tls: TLSFiles) -> None:
    with Client(KEY, base_url=secure_url(secure), verify=tls.ca_path) as client:
        report = client.doctor()
    assert report.ok, str(report)
    assert all(check.status == "pass" for check in report)
    assert tls.ca_path in report["ca_bundle"].detail
    assert report["tls"].detail.startswith("TLSv1") and "trustme" in report["tls"].detail
    assert "TLS Org" in report["auth"].detail


def test_private_ca_fails_without_verify_with_a_hint(secure: Any) -> None:
    with Client(KEY, base_url=secure_url(secure)) as client:
        report = client.doctor()
    assert not report.ok and statuses(report)["tcp"] == "pass" and statuses(report)["tls"] == "fail"
    assert "verification failed" in report["tls"].detail and "verify=" in report["tls"].hint
    assert "system default" in report["ca_bundle"].detail or "SSL_CERT" in report["ca_bundle"].detail
    assert [statuses(report)[n] for n in ("clock", "health", "auth")] == ["skip"] * 3


def test_ssl_cert_file_is_reported(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca_path)
    with Client(KEY, base_url=secure_url(secure)) as client:
        report = client.doctor()
    assert report.ok and report["ca_bundle"].detail.startswith("SSL_CERT_FILE=" + tls.ca_path)


def test_connect_proxy_is_reported_and_used(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    password = "proxy-pass-6e4c"
    auth = "Basic " + base64.b64encode(("user:" + password).encode()).decode()
    with Proxy(require_auth=auth) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", "http://user:%s@127.0.0.1:%d" % (password, proxy.port))
        with Client(KEY, base_url=secure_url(secure), verify=tls.ca_path) as client:
            report = client.doctor()
        assert report.ok, str(report)
        detail = report["proxy"].detail
        assert "127.0.0.1:%d" % proxy.port in detail and "HTTPS_PROXY" in detail and "with credentials" in detail
        assert "CONNECT" in detail and "(the proxy)" in report["tcp"].detail
        assert proxy.connects and all(c.target == "localhost:%d" % secure.port for c in proxy.connects)
        assert_no_key(report, KEY, password)


def test_wrong_proxy_password_fails_tls_with_a_hint(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    with Proxy(require_auth="Basic nope") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", "http://u:wrong-pw-31@127.0.0.1:%d" % proxy.port)
        with Client(KEY, base_url=secure_url(secure), verify=tls.ca_path) as client:
            report = client.doctor()
    assert statuses(report)["tls"] == "fail" and "407" in report["tls"].detail and "password" in report["tls"].hint
    assert_no_key(report, KEY, "wrong-pw-31")


def test_no_proxy_covering_the_host_is_reported(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Client(DEMO_API_KEY, base_url=emulator.base_url) as client:
        report = client.doctor()
    assert report.ok and "NO_PROXY covers 127.0.0.1" in report["proxy"].detail


def test_plain_http_to_another_host_passes_with_a_hint_and_bad_url_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # Only the configuration checks run: the URL check fails first, so nothing is resolved or sent.
    code, out, _err = run_cli(["--api-key", KEY, "--base-url", "http://[::1/x", "--json"], capsys)
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 1 and checks["base_url"]["status"] == "fail"
    assert [checks[n]["status"] for n in ORDER[2:]] == ["skip"] * 8
    # Plain http to another host (an emulator in another container): only the URL check is run,
    # so no name is looked up off this machine.
    session = Client(KEY, base_url="http://visgate-emulator:8765/api/v1")._session
    with pytest.raises(visgate_sdk._DoctorNote) as note:
        visgate_sdk._doctor_base_url(visgate_sdk._Doctor(session, KEY, None, 1.0))
    assert "unencrypted" in note.value.hint


def test_verify_false_passes_with_a_hint(secure: Any) -> None:
    with Client(KEY, base_url=secure_url(secure), verify=False) as client:
        report = client.doctor()
    assert report.ok and "DISABLED" in report["ca_bundle"].detail and report["ca_bundle"].hint
    assert "not checked" in report["tls"].detail
    assert "hint: any certificate" in str(report)
