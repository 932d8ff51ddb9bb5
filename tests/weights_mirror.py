"""Loopback stand-ins for the internet, shared by the weight tests.

`network_guard` records (and refuses) every connection that would leave the
machine; `mirror` is an HTTP server on 127.0.0.1, in a thread, that
`fcn_weights.BASE_URL` points at. Import the fixtures into a test module to
use them.
"""

import hashlib
import http.server
import ipaddress
import socket
import threading

import pytest

from keras.src.applications import fcn_weights

_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture
def network_guard(monkeypatch):
    """Refuses every connection off the machine; the test fails if any was
    attempted (the code under test may swallow the refusal)."""
    attempts = []

    def connect(sock, address):
        if not (isinstance(address, tuple) and _is_loopback(address[0])):
            attempts.append(("connect", address))
            raise ConnectionRefusedError(f"test: no network ({address})")
        return _connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            attempts.append(("getaddrinfo", host))
            raise socket.gaierror(f"test: no network ({host})")
        return _getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    yield attempts
    assert attempts == [], f"network access attempted: {attempts}"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """A fresh `$KERAS_HOME`, for this package and for Keras' own builders
    (which read KERAS_HOME when Keras is imported)."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(home))
    return home


class Mirror:
    """Files served at `url`, and the GET requests counted by path."""

    def __init__(self, url):
        self.url = url
        self.files = {}
        self.requests = []
        self.cut_short = {}  # path: bytes sent before the connection drops

    def serve(self, keras_file, content, file_hash="sha256"):
        """Serves `content` as `keras_file`; registers its hash (of the
        given algorithm, or the string given) as the published one."""
        self.files["/" + keras_file.path] = content
        if file_hash in ("sha256", "md5"):
            file_hash = hashlib.new(file_hash, content).hexdigest()
        if file_hash is not None:
            fcn_weights.KNOWN_HASHES[keras_file.file_name] = file_hash
        else:
            fcn_weights.KNOWN_HASHES.pop(keras_file.file_name, None)

    def count(self, keras_file):
        return self.requests.count("/" + keras_file.path)


@pytest.fixture
def mirror(monkeypatch, network_guard):
    """An HTTP server on 127.0.0.1 standing in for Keras' file host."""
    monkeypatch.setattr(
        fcn_weights, "KNOWN_HASHES", dict(fcn_weights.KNOWN_HASHES)
    )
    served = Mirror(None)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.requests.append(self.path)
            content = served.files.get(self.path)
            if content is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content[: served.cut_short.get(self.path)])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setattr(fcn_weights, "BASE_URL", served.url)
    yield served
    server.shutdown()
    server.server_close()


def closed_port():
    """A loopback port that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
