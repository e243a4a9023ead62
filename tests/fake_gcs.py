"""A local stand-in for Google Cloud Storage's JSON API, serving a directory on loopback.

Enough of the API for tensorstore's `gcs` driver (pointed at it with TENSORSTORE_GCS_HTTP_URL,
authenticated with GOOGLE_AUTH_TOKEN_FOR_TESTING): object reads (`alt=media`, with byte
ranges) and listings (`startOffset` / `endOffset` / `prefix`). Objects of bucket B are the files
under ROOT/B. Every object read is counted, so a test can assert that nothing was read twice.
"""
from __future__ import annotations

import collections
import contextlib
import http.server
import json
import os
import threading
import urllib.parse


class FakeGcs:
  def __init__(self, root: str):
    self.root = root
    self.reads: collections.Counter = collections.Counter()  # "bucket/object" -> media GETs
    fake = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def log_message(self, *args):  # quiet
        pass

      def _json(self, body: dict, status: int = 200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def do_GET(self):  # pylint: disable=invalid-name
        url = urllib.parse.urlparse(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        parts = url.path.split("/")  # '', storage, v1, b, BUCKET, o[, OBJECT]
        if len(parts) < 6 or parts[1:4] != ["storage", "v1", "b"] or parts[5] != "o":
          return self._json({"error": {"code": 400, "message": "unsupported"}}, 400)
        bucket = parts[4]
        if len(parts) == 6:
          return self._json(fake._list(bucket, query))
        name = urllib.parse.unquote("/".join(parts[6:]))
        path = os.path.join(fake.root, bucket, name)
        if not os.path.isfile(path):
          return self._json({"error": {"code": 404, "message": "No such object"}}, 404)
        if query.get("alt") != "media":
          st = os.stat(path)
          return self._json({"name": name, "bucket": bucket, "size": str(st.st_size), "generation": "1",
                             "metageneration": "1"})
        with open(path, "rb") as f:
          data = f.read()
        fake.reads[f"{bucket}/{name}"] += 1
        status, headers = 200, {}
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
          start, _, end = ranged[len("bytes="):].partition("-")
          start, end = int(start), (int(end) if end else len(data) - 1)
          headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
          data, status = data[start:end + 1], 206
        self.send_response(status)
        for k, v in headers.items():
          self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-goog-generation", "1")
        self.send_header("x-goog-metageneration", "1")
        self.end_headers()
        self.wfile.write(data)

    self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

  def _list(self, bucket: str, query: dict) -> dict:
    base = os.path.join(self.root, bucket)
    names = []
    for dirpath, _, files in os.walk(base):
      for f in files:
        names.append(os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/"))
    lo, hi, prefix = query.get("startOffset", ""), query.get("endOffset"), query.get("prefix", "")
    items = [{"name": n, "bucket": bucket, "size": str(os.path.getsize(os.path.join(base, n))), "generation": "1"}
             for n in sorted(names) if n >= lo and (hi is None or n < hi) and n.startswith(prefix)]
    return {"kind": "storage#objects", "items": items}

  def env(self) -> dict[str, str]:
    """The environment a process needs to read gs:// from this server."""
    return {"TENSORSTORE_GCS_HTTP_URL": self.url, "GOOGLE_AUTH_TOKEN_FOR_TESTING": "fake-token"}

  @contextlib.contextmanager
  def serving(self):
    thread = threading.Thread(target=self._server.serve_forever, daemon=True)
    thread.start()
    try:
      yield self
    finally:
      self._server.shutdown()
      self._server.server_close()
