"""The warm cost of the proxy's cooldown (issue 26: at most 5%): a page of 1,000 files and one
stored file asked in loops from a proxy without and one with ``--exclude-newer``, in
alternating rounds. The cutoff keeps every file (``12h``; files are 1 to 30 days old), so both
pages are the same size and only the guard's cost differs.

    python -m benchmarks.proxy_cooldown [--rounds 20] [--requests 200] [--cutoff 12h]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FILES = 1000
JSON = "application/vnd.pypi.simple.v1+json"


def _content(name: str) -> bytes:
    return name.encode() * 10


def _page() -> bytes:
    now = datetime.now(UTC)
    files = []
    for i in range(FILES):
        name = f"big-1.{i}-py3-none-any.whl"
        uploaded = now - timedelta(days=i % 30 + 1)
        files.append(
            {
                "filename": name,
                "url": f"/files/{name}",
                "hashes": {"sha256": hashlib.sha256(_content(name)).hexdigest()},
                "upload-time": uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "size": len(_content(name)),
            }
        )
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "big", "files": files}).encode()


def _upstream() -> str:
    page = _page()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/simple/big"):
                body, kind = page, JSON
            elif self.path.startswith("/files/"):
                body, kind = _content(self.path.rsplit("/", 1)[1]), "application/octet-stream"
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/simple/"


def _start(upstream: str, store: str, args: list[str]) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "wheelhouse", "serve", "--port", "0", "--upstream", upstream]
    proc = subprocess.Popen([*argv, "--store", store, *args], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("proxying ") and line.endswith("(Ctrl-C to stop)\n"):
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # drained
            return proc, line.split(" at ")[-1].split()[0]
    raise SystemExit("the proxy did not start")


def _loop(url: str, path: str, count: int, accept: str) -> float:
    """Seconds per request for ``count`` requests on one kept-alive connection."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port)
    start = time.perf_counter()
    for _ in range(count):
        connection.request("GET", path, headers={"Accept": accept})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
    connection.close()
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cutoff", default="12h")
    options = parser.parse_args()
    upstream = _upstream()
    proxies: dict[str, tuple[subprocess.Popen[str], str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, args in (("plain", []), ("cooldown", ["--exclude-newer", options.cutoff])):
            proc, url = _start(upstream, f"{tmp}/{label}", args)
            _loop(url, "/simple/big/", 20, JSON)  # fetched, rendered, warm
            where = urlsplit(url)
            connection = http.client.HTTPConnection(where.hostname or "", where.port)
            connection.request("GET", "/simple/big/", headers={"Accept": JSON})
            files = json.loads(connection.getresponse().read())["files"]
            print(f"{label}: {len(files)} files on the page")
            wheel = urlsplit(files[-1]["url"]).path
            _loop(url, wheel, 2, "*/*")  # stored
            proxies[label] = (proc, url, wheel)
        results: dict[tuple[str, str], list[float]] = {}
        try:
            for _ in range(options.rounds):
                for label, (_, url, wheel) in proxies.items():
                    for form, accept in (("json", JSON), ("html", "text/html"), ("file", "*/*")):
                        path = wheel if form == "file" else "/simple/big/"
                        took = _loop(url, path, options.requests, accept)
                        results.setdefault((label, form), []).append(took)
        finally:
            for proc, _, _ in proxies.values():
                proc.terminate()
                proc.wait()
    for form in ("json", "html", "file"):
        plain, cooled = results[("plain", form)], results[("cooldown", form)]
        print(
            f"{form}: plain {statistics.median(plain) * 1e3:.3f} ms, cooldown "
            f"{statistics.median(cooled) * 1e3:.3f} ms (medians); ratio "
            f"{statistics.median(cooled) / statistics.median(plain):.3f} median, "
            f"{min(cooled) / min(plain):.3f} best"
        )
    with open("/proc/loadavg") as load:
        print("load average:", " ".join(load.read().split()[:3]))


if __name__ == "__main__":
    main()
