"""Downloads: atomic, capped, typed errors, and no credentials for the media host."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

import visgate_sdk
from tests._servers import Proxy, RawServer, https_server, keepalive_json_handler, response_bytes
from tests.conftest import fast_retry
from visgate_sdk import ConnectionError, DownloadError, ImageResult, TimeoutError, TLSError

API_KEY = "vg-download-secret-key"
FAL_KEY = "fal_download_secret"
PAYLOAD = bytes(range(256)) * 400  # 100 KiB, several read chunks
CLIENT_DEFAULTS = {"api_key": API_KEY, "fal_key": FAL_KEY, "max_retries": fast_retry(1)}  # for make_client


@pytest.fixture()
def media_server():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def leftovers(folder) -> list:
    return [name for name in os.listdir(folder) if name.endswith(".part")]


def test_download_writes_file_and_sends_no_credentials(httpserver, media_server, tmp_path, make_client):
    media_server.expect_request("/media/a.png").respond_with_data(PAYLOAD, content_type="image/png")
    with make_client() as client:
        path = client.download(media_server.url_for("/media/a.png"), tmp_path / "a.png")
    assert path == str(tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == []
    (request, _), = media_server.log
    sent = {k.lower(): v for k, v in request.headers.items()}
    assert "authorization" not in sent
    assert not any(k.startswith("x-") and k.endswith("-key") for k in sent)
    assert API_KEY not in str(request.headers) and FAL_KEY not in str(request.headers)


def test_download_from_the_api_host_itself_sends_no_credentials(httpserver, tmp_path, make_client):
    # Media on the same origin as the API still get no key: the URL came from a response body.
    httpserver.expect_request("/media/b.png").respond_with_data(PAYLOAD)
    with make_client() as client:
        client.download(httpserver.url_for("/media/b.png"), tmp_path / "b.png")
    (request, _), = httpserver.log
    assert "Authorization" not in request.headers and "X-Fal-Key" not in request.headers


def test_result_save_uses_the_first_image(httpserver, media_server, tmp_path, make_client):
    media_server.expect_request("/img/1.png").respond_with_data(b"first")
    media_server.expect_request("/img/2.png").respond_with_data(b"second")
    httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_json(
        {"id": "g1", "images": [media_server.url_for("/img/1.png"), media_server.url_for("/img/2.png")],
         "model": "m", "provider": "fal", "cost": 0.01}
    )
    with make_client() as client:
        result = client.images.generate("m", "a cat", num_images=2)
        assert isinstance(result, ImageResult)
        result.save(tmp_path / "one.png")
        result.save(tmp_path / "two.png", index=1)
    assert (tmp_path / "one.png").read_bytes() == b"first"
    assert (tmp_path / "two.png").read_bytes() == b"second"


def test_save_without_media_is_a_typed_error(tmp_path):
    with pytest.raises(DownloadError) as info:
        ImageResult(id="x").save(tmp_path / "none.png")
    assert info.value.error_code == "NO_MEDIA"
    assert not (tmp_path / "none.png").exists()


def test_size_cap_leaves_nothing_behind(httpserver, media_server, tmp_path, make_client):
    media_server.expect_request("/big").respond_with_data(PAYLOAD)
    target = tmp_path / "big.bin"
    target.write_bytes(b"old content")
    with make_client() as client, pytest.raises(DownloadError) as info:
        client.download(media_server.url_for("/big"), target, max_bytes=1000)
    assert info.value.error_code == "RESPONSE_TOO_LARGE"
    assert target.read_bytes() == b"old content"  # the old file is untouched
    assert leftovers(tmp_path) == []


def test_size_cap_without_content_length(httpserver, media_server, tmp_path, make_client):
    def chunked(_request):
        return Response((PAYLOAD[i:i + 4096] for i in range(0, len(PAYLOAD), 4096)), content_type="image/png")

    media_server.expect_request("/stream").respond_with_handler(chunked)
    with make_client() as client, pytest.raises(DownloadError):
        client.download(media_server.url_for("/stream"), tmp_path / "s.bin", max_bytes=10_000)
    assert os.listdir(tmp_path) == []


def test_http_error_from_media_host(httpserver, media_server, tmp_path, make_client):
    media_server.expect_request("/gone").respond_with_data("no such object", status=404)
    with make_client() as client, pytest.raises(DownloadError) as info:
        client.download(media_server.url_for("/gone"), tmp_path / "gone.png")
    assert info.value.status_code == 404
    assert os.listdir(tmp_path) == []


def test_redirect_is_followed_without_credentials(httpserver, media_server, tmp_path, make_client):
    media_server.expect_request("/final.png").respond_with_data(b"png bytes")
    httpserver.expect_request("/signed").respond_with_data(
        "", status=302, headers={"Location": media_server.url_for("/final.png")}
    )
    with make_client() as client:
        client.download(httpserver.url_for("/signed"), tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes() == b"png bytes"
    for log in (httpserver.log, media_server.log):
        for request, _ in log:
            assert "Authorization" not in request.headers


class _CutServer:
    """Announces more bytes than it sends, then closes: a transfer cut in the middle."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.hits = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/video.mp4" % self.sock.getsockname()[1]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_cut_transfer_never_leaves_a_half_file(httpserver, tmp_path, make_client):
    server = _CutServer()
    try:
        with make_client() as client, pytest.raises(ConnectionError) as info:
            client.download(server.url, tmp_path / "video.mp4")
    finally:
        server.close()
    assert "cut short" in str(info.value) or "IncompleteRead" in str(info.value)
    assert server.hits == 2  # retried once (max_retries=1), then gave up
    assert os.listdir(tmp_path) == []


def test_download_timeout_is_typed(httpserver, media_server, tmp_path, make_client):
    def slow(_request):
        time.sleep(1.0)
        return Response(b"late")

    media_server.expect_request("/slow").respond_with_handler(slow)
    with make_client(max_retries=0) as client, pytest.raises(TimeoutError):
        client.download(media_server.url_for("/slow"), tmp_path / "slow.bin", timeout=0.2)
    assert os.listdir(tmp_path) == []


def test_bad_download_arguments_fail_before_sending(httpserver, tmp_path, make_client):
    with make_client() as client:
        with pytest.raises(visgate_sdk.ValidationError):
            client.download("ftp://example.invalid/x.png", tmp_path / "x.png")
        with pytest.raises(visgate_sdk.ValidationError):
            client.download(httpserver.url_for("/x"), tmp_path / "x.png", max_bytes=0)
    assert httpserver.log == []


def test_two_downloads_from_one_host_share_one_connection(tmp_path, make_client):
    answer = keepalive_json_handler(lambda req, server: response_bytes(200, b"media:" + req.target.encode(), {"Content-Type": "image/png"}))
    with RawServer(answer) as media:
        client = make_client()
        client.download(media.url("/a.png"), tmp_path / "a.png")
        client.download(media.url("/b.png"), tmp_path / "b.png")
        assert (tmp_path / "a.png").read_bytes() == b"media:/a.png"
        assert (tmp_path / "b.png").read_bytes() == b"media:/b.png"
        assert len(media.requests) == 2
        assert media.connections == 1, "the second download reuses the keep-alive connection"


def test_save_on_a_result_not_attached_to_a_client(media_server, tmp_path):
    media_server.expect_request("/img/solo.png").respond_with_data(b"solo")
    result = ImageResult(id="x", images=[media_server.url_for("/img/solo.png")])
    assert result.save(tmp_path / "solo.png") == str(tmp_path / "solo.png")
    assert (tmp_path / "solo.png").read_bytes() == b"solo"
    (request, _), = media_server.log
    assert "Authorization" not in request.headers


def _image_answer(url):
    return {"id": "g1", "images": [url], "model": "m", "provider": "fal", "cost": 0.01}


def test_save_on_an_attached_result_uses_the_clients_ca(httpserver, tls, tmp_path, make_client):
    for media in https_server(tls.server_context("localhost")):
        media.expect_request("/img/tls.png").respond_with_data(b"over tls")
        url = "https://localhost:%d/img/tls.png" % media.port
        httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_json(_image_answer(url))
        result = make_client(verify=tls.ca_path).images.generate("m", "a cat")
        result.save(tmp_path / "tls.png")
        assert (tmp_path / "tls.png").read_bytes() == b"over tls"
        # The same result detached from its client trusts only the system CAs.
        with pytest.raises(TLSError):
            ImageResult.from_dict(result.raw).save(tmp_path / "detached.png")
        assert not (tmp_path / "detached.png").exists()


def test_save_on_an_attached_result_uses_the_clients_proxy_settings(httpserver, media_server, tmp_path, monkeypatch, make_client):
    url = media_server.url_for("/img/p.png").replace("127.0.0.1", "localhost")
    media_server.expect_request("/img/p.png").respond_with_data(b"direct")
    httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_json(_image_answer(url))
    with Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the API itself is reached directly
        proxied = make_client()  # reads the proxy settings now, once
        direct = make_client(trust_env=False)
        monkeypatch.delenv("HTTP_PROXY")
        proxied.images.generate("m", "a cat").save(tmp_path / "proxied.png")
        direct.images.generate("m", "a cat").save(tmp_path / "direct.png")
        assert [r.target for r in proxy.forwarded] == [url]
    assert b"via-proxy" in (tmp_path / "proxied.png").read_bytes()  # the proxy answered the download
    assert (tmp_path / "direct.png").read_bytes() == b"direct"
    assert len(media_server.log) == 1
