"""A real OpenID Connect provider for the tests (``oidc-provider`` from npm, run by Node), behind
a small forwarding proxy that can tamper with the ID token it hands back.

The provider itself is panva's certified ``oidc-provider`` (tests/oidc/provider.mjs); nothing
here imitates it. The proxy sits between bibia (and the browser) and the provider: it forwards
every request as is (Host kept, so the provider's URLs name the proxy, which is its issuer),
and when :attr:`RunningProvider.tamper` is set it flips one byte of the ID token's signature in
the token endpoint's answer, to prove bibia refuses it.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, free_port, need

SCRIPT = Path(__file__).with_name("provider.mjs")
PACKAGE = ROOT / "node_modules" / "oidc-provider" / "package.json"
CLIENT_ID = "bibia-tests"
CLIENT_SECRET = "un-secret-de-test-qui-ne-doit-jamais-fuiter-0123456789"

# Nantes Métropole: SIREN 244400404, one of its establishments' SIRET 24440040400012
ACCOUNTS: dict[str, dict[str, Any]] = {
    "camille": {
        "email": "camille.martin@nantesmetropole.fr",
        "email_verified": True,
        "given_name": "Camille",
        "usual_name": "Martin",
        "siret": "24440040400012",
    },
    "dominique": {
        "email": "dominique.durand@exemple-inconnu.fr",
        "email_verified": True,
        "given_name": "Dominique",
        "usual_name": "Durand",
        "siret": "99999999900017",
    },
}


def flip_signature(id_token: str) -> str:
    """``id_token`` with one byte of its signature changed (header and claims untouched)."""
    head, claims, signature = id_token.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{claims}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"


@dataclass
class RunningProvider:
    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen[bytes]
    tamper: bool = False
    token_requests: list[str] = field(default_factory=list)  # paths seen at the token endpoint
    userinfo_types: list[str] = field(default_factory=list)  # content types of its userinfo answers


def _proxy(upstream_port: int, running: list[RunningProvider], port: int) -> ThreadingHTTPServer:
    hop = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            provider = running[0] if running else None
            if (
                provider is not None
                and self.command == "POST"
                and self.path.split("?")[0].endswith("/token")
            ):
                provider.token_requests.append(self.path)
                if provider.tamper and answer.status == 200:
                    document = json.loads(data)
                    document["id_token"] = flip_signature(document["id_token"])
                    data = json.dumps(document).encode()
            if provider is not None and self.path.split("?")[0].endswith("/me"):
                provider.userinfo_types.append(answer.getheader("content-type") or "")
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in hop:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = _forward

    return ThreadingHTTPServer(("127.0.0.1", port), Forward)


@contextmanager
def oidc_provider(
    redirect_uris: list[str], post_logout_redirect_uris: list[str], *, port: int = 0
) -> Iterator[RunningProvider]:
    """Start the provider (Node) and its proxy on loopback; stop both afterwards.

    Args:
        redirect_uris: bibia's callback URLs the client may use.
        post_logout_redirect_uris: where the provider may send the browser after its sign-out.
        port: the proxy's port, which names the issuer (``http://127.0.0.1:<port>``); 0: any
            free one. Choose it beforehand (:func:`tests.conftest.free_port`) to configure bibia
            with the issuer before the provider knows bibia's address.
    """
    node = shutil.which("node")
    need(node is not None, "Node.js is missing (apt-get install -y nodejs)")
    need(
        PACKAGE.exists(), f"oidc-provider is missing at {PACKAGE.parent} (make install runs npm ci)"
    )
    running: list[RunningProvider] = []
    upstream = free_port()  # the provider's own port; the proxy's is the issuer's
    proxy = _proxy(upstream, running, port)
    proxy_port = proxy.server_address[1]
    issuer = f"http://127.0.0.1:{proxy_port}"
    config = {
        "issuer": issuer,
        "port": upstream,
        "client": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
        },
        "accounts": ACCOUNTS,
    }
    process = subprocess.Popen(
        [str(node), str(SCRIPT)],
        cwd=ROOT,
        env={**os.environ, "OIDC_TEST_CONFIG": json.dumps(config), "NODE_ENV": "test"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        assert process.stdout is not None
        said: list[str] = []  # warnings first (Node 20 is « unsupported » but works), then ready
        while not (said and said[-1].startswith("ready")):
            line = process.stdout.readline().decode(errors="replace")
            if not line:
                raise RuntimeError("the OpenID Connect provider did not start:\n" + "".join(said))
            said.append(line)
        provider = RunningProvider(
            issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, process=process
        )
        running.append(provider)
        # drain its output (warnings about development interactions) so it never blocks
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield provider
    finally:
        proxy.shutdown()
        proxy.server_close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
