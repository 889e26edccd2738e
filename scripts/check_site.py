"""Check the built documentation: every internal link resolves; screenshots in Chromium.

Usage: ``python scripts/check_site.py [docs/_build/html] [--screenshots DIR]``.
The link check parses the HTML with the standard library only. When a ``chromium`` binary
is on PATH, the index and one gallery page are opened headless and screenshotted into
DIR (default ``docs/_build/screenshots``); a missing screenshot is an error.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and not (tag == "link" and a.get("rel") == "preconnect"):
                self.links.append(a[key])


def check_links(root: Path) -> list[str]:
    """Return one message per internal link (file or #anchor) that does not resolve."""
    pages = {p: _parse(p) for p in root.rglob("*.html") if "_static" not in p.relative_to(root).parts}
    bad = []
    for page, parsed in pages.items():
        for link in parsed.links:
            u = urlsplit(link)
            if u.scheme or u.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not checked (the site must work offline anyway)
            target = page if not u.path else (page.parent / unquote(u.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                bad.append(f"{page.relative_to(root)}: missing {link}")
                continue
            if u.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(u.fragment) not in ids:
                    bad.append(f"{page.relative_to(root)}: no anchor {link}")
    return bad


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p


def screenshot(page: Path, out: Path) -> None:
    """Open ``page`` in headless Chromium and write a PNG to ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--window-size=1400,1800",
            "--virtual-time-budget=8000",
            f"--screenshot={out}",
            page.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    if not out.exists() or out.stat().st_size < 10_000:
        raise RuntimeError(f"no usable screenshot of {page}")


def main(argv: list[str] | None = None) -> int:
    """Check the site; return 1 when a link is broken or a screenshot fails."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="docs/_build/html")
    ap.add_argument("--screenshots", default="docs/_build/screenshots")
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    if not (root / "index.html").exists():
        print(f"{root}/index.html not found: build the docs first", file=sys.stderr)
        return 1
    bad = check_links(root)
    n = sum(1 for p in root.rglob("*.html") if "_static" not in p.relative_to(root).parts)
    for msg in bad:
        print("BROKEN", msg)
    print(f"{n} pages, {len(bad)} broken internal links")
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        out = Path(args.screenshots)
        out.mkdir(parents=True, exist_ok=True)
        for page, name in [
            (root / "index.html", "index.png"),
            (root / "auto_examples" / "plot_02_fig2.html", "gallery_fig2.png"),
            (root / "math.html", "math.png"),
        ]:
            screenshot(page, out / name)
            print("screenshot", out / name)
    else:
        print("chromium not found: screenshots skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
