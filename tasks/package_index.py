"""A client of Python package indexes (PEP 503/691 simple API) as pip is configured: which
indexes pip would ask (`pip_index_urls`) and the files a project has on one (`index_files`).
`flan-jax data prepare bigbench` finds BIG-bench's source archive this way: no pip, no build
(its metadata names a dependency by a file:// URL, which pip >= 24 refuses)."""
from __future__ import annotations

import configparser
import html.parser
import json
import os
import pathlib
import sys
import urllib.parse
import urllib.request

DEFAULT_INDEX = "https://pypi.org/simple"


def pip_index_urls() -> list[str]:
  """The package indexes pip is configured with, in pip's order: the index URL
  ($PIP_INDEX_URL, else `index-url` in pip's configuration files, else PyPI), then the extra
  index URLs ($PIP_EXTRA_INDEX_URL / `extra-index-url`)."""
  xdg = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
  home = pathlib.Path.home()
  files = [*(pathlib.Path(d) / "pip" / "pip.conf" for d in reversed(xdg)), pathlib.Path("/etc/pip.conf"),
           home / ".pip" / "pip.conf",
           pathlib.Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "pip" / "pip.conf",
           pathlib.Path(sys.prefix) / "pip.conf"]
  if os.environ.get("PIP_CONFIG_FILE"):
    files.append(pathlib.Path(os.environ["PIP_CONFIG_FILE"]))
  found = {}
  for path in files:  # later files win, as in pip
    parser = configparser.RawConfigParser()
    try:
      parser.read(path)
    except (configparser.Error, OSError):
      continue
    for section in ("global", "download"):
      for key in ("index-url", "extra-index-url"):
        if parser.has_option(section, key):
          found[key] = parser.get(section, key)
  index = os.environ.get("PIP_INDEX_URL") or found.get("index-url") or DEFAULT_INDEX
  extra = os.environ.get("PIP_EXTRA_INDEX_URL") or found.get("extra-index-url") or ""
  return [index, *(u for u in extra.split() if u != index)]


def index_files(index_url: str, project: str, timeout: float) -> dict[str, tuple[str, str | None]]:
  """filename -> (URL, sha256 or None) of a project on a PEP 503/691 simple index (JSON or
  HTML; http(s) or file:// with index.html pages)."""
  page = index_url.rstrip("/") + f"/{project}/"
  if page.startswith("file:"):
    local = pathlib.Path(urllib.request.url2pathname(urllib.parse.urlparse(page).path))
    body = (local / "index.html").read_text(encoding="utf-8")
  else:
    request = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
      body = r.read().decode("utf-8")
  try:
    listing = json.loads(body)
  except ValueError:
    listing = None
  if isinstance(listing, dict):
    return {f["filename"]: (urllib.parse.urljoin(page, f["url"]), (f.get("hashes") or {}).get("sha256"))
            for f in listing.get("files", [])}

  class Anchors(html.parser.HTMLParser):
    def __init__(self):
      super().__init__()
      self.files = {}

    def handle_starttag(self, tag, attrs):
      href = dict(attrs).get("href")
      if tag == "a" and href:
        url, _, fragment = urllib.parse.urljoin(page, href).partition("#")
        name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        sha = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
        self.files[name] = (url, sha)

  anchors = Anchors()
  anchors.feed(body)
  return anchors.files
