"""The rendered site, checked as a reader would see it.

The site is built with the README's command (`python scripts/build_site.py`), served on 127.0.0.1
and opened page by page in headless Chromium. Every HTML page the build produced is walked, so
chapters added later are covered without touching this file. Run after the notebook items
(`conftest.py` orders it last), the build renders the copies they have just executed.
"""
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from browser import SCREENSHOTS, PageProblems, chromium, require_browser, serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from build_site import _output_page, chapter_notebooks  # noqa: E402

# After MathJax has run, no TeX delimiters may be left in the visible text of a page.
RAW_MATH = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|(?<![\w$])\$[^$\s][^$\n]*?\$(?![\w$])")
VISIBLE_TEXT = """() => {
  const root = document.querySelector('article') || document.body;
  const copy = root.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight, .output').forEach(e => e.remove());
  return copy.innerText;
}"""
MATHJAX_DONE = "() => !document.querySelector('.math') || (window.MathJax && MathJax.startup && MathJax.startup.promise && true)"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require_browser()
    out = tmp_path_factory.mktemp("site")
    res = subprocess.run([sys.executable, "scripts/build_site.py", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=3600)
    assert res.returncode == 0, f"build failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return out


@pytest.fixture(scope="module")
def base_url(site):
    with serve(site) as url: yield url


def site_pages(site: Path) -> list[str]:
    "Every HTML page of the build (not the copied assets)."
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if not p.relative_to(site).parts[0].startswith(("_static", "_sources", "_downloads", "_images")))


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__(); self.ids = set()
    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k in ("id", "name") and v)


def ids_of(path: Path) -> set[str]:
    p = _Ids(); p.feed(path.read_text(errors="replace")); return p.ids


def expected_images(site_src: Path, page: str) -> int:
    "Image outputs the page's notebook holds (outside cells whose output is removed)."
    nb = site_src / f"{page}.ipynb"
    if not nb.exists(): return 0
    n = 0
    for c in json.loads(nb.read_text())["cells"]:
        if "remove-output" in c.get("metadata", {}).get("tags", []): continue
        n += sum(1 for o in c.get("outputs", []) if "image/png" in o.get("data", {}) and "text/markdown" not in o.get("data", {}))
    return n


def test_every_notebook_is_a_page(site):
    pages = set(site_pages(site))
    expected = {f"{_output_page(nb)}.html" for nb in chapter_notebooks()} | {"index.html", "api.html", "search.html"}
    assert expected <= pages, expected - pages
    nav = (site / "index.html").read_text()
    for nb in chapter_notebooks():                      # in the navigation, in chapter order
        if _output_page(nb) != "index": assert f'href="{_output_page(nb)}.html"' in nav, nb.name
    positions = [nav.find(f'href="{_output_page(nb)}.html"') for nb in chapter_notebooks() if _output_page(nb) != "index"]
    assert positions == sorted(positions), "chapters out of order in the navigation"


def test_every_page_reads_cleanly(site, base_url):
    "No console errors or failed requests, equations typeset, images non-empty, internal links resolve."
    site_src = ROOT / "_site_build" / "src"
    links, problems, typeset = set(), {}, {}
    with chromium() as browser:
        for rel in site_pages(site):
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            seen = PageProblems(page)
            page.goto(base_url + rel, wait_until="load")
            try:
                page.wait_for_function(MATHJAX_DONE, timeout=30_000)
                page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true")
                page.wait_for_load_state("networkidle", timeout=30_000)
            except PlaywrightTimeout:
                seen.items.append("MathJax did not load within 30 s")
            issues = list(seen.items)
            n_math = page.locator(".math").count()
            if n_math:
                untypeset = page.evaluate("() => [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).length")
                if untypeset: issues.append(f"{untypeset} of {n_math} equations not typeset")
                typeset[rel] = page.locator("mjx-container").count()
            if raw := RAW_MATH.findall(page.evaluate(VISIBLE_TEXT)):
                issues.append(f"raw TeX left in the text: {raw[:5]}")
            imgs = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])")
            issues += [f"empty image {src}" for src, ok, w, h in imgs if not (ok and w > 0 and h > 0)]
            want = expected_images(site_src, Path(rel).stem)
            got = len([s for s, *_ in imgs if s and "_images/" in s])
            if got < want: issues.append(f"{got} plots rendered, the notebook has {want}")
            links |= {(rel, href) for href in page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")}
            if issues: problems[rel] = issues
            page.close()
    assert not problems, problems
    assert typeset.get("evaluate.html", 0) > 20, typeset          # the NDCG derivation is typeset

    broken, ids = [], {}
    for rel, href in sorted(links):
        url, frag = urldefrag(href)
        if not url.startswith(base_url): continue                     # external: not this site's business
        target = site / unquote(urlparse(url).path).lstrip("/")
        if target.is_dir(): target = target / "index.html"
        if not target.is_file() or target.stat().st_size == 0:
            broken.append((rel, href)); continue
        if frag and target.suffix == ".html":
            if frag not in ids.setdefault(target, ids_of(target)): broken.append((rel, href))
    assert not broken, broken
    internal = [h for _, h in links if h.startswith(base_url)]
    assert len(internal) > 100, len(internal)


def test_chapters_link_to_the_api_and_their_notebook(site):
    api_ids = ids_of(site / "api.html")
    for nb in chapter_notebooks():
        page = _output_page(nb)
        html = (site / f"{page}.html").read_text()
        download = re.search(r'href="(_downloads/[^"]+\.ipynb)"', html)
        assert download, f"{page}: no download link"
        assert json.loads((site / download.group(1)).read_text())["cells"] == json.loads(nb.read_text())["cells"]
        assert f"/lab/tree/nbs/{nb.name}" in html, f"{page}: no JupyterLab link"
        if page == "index": continue
        to_api = set(re.findall(r'href="api\.html#([^"]+)"', html))
        assert to_api, f"{page}: no link to the API reference"
        assert to_api <= api_ids, to_api - api_ids
    api = (site / "api.html").read_text()
    for name in ("to_interactions", "leave_one_out", "metrics_at_k", "evaluate", "fit", "device_report", "baselines"):
        assert f"<h3>{name}" in api or f">{name}<" in api, name                      # show_doc entries
    assert "def to_interactions(" in re.sub(r"<[^>]+>", "", api)                       # signatures


def test_search_box_finds_functions(site, base_url):
    with chromium() as browser:
        page = browser.new_page()
        page.goto(base_url + "index.html")
        page.fill("input[name=q]", "leave_one_out")
        page.keyboard.press("Enter")
        page.wait_for_selector("#search-results li", timeout=30_000)
        hits = page.eval_on_selector_all("#search-results li a", "as => as.map(a => a.getAttribute('href'))")
        assert any(h.startswith(("api.html", "data.html")) for h in hits), hits


def test_screenshots(site, base_url):
    "Screenshots of the NDCG derivation and the API page, kept under _site_build/screenshots/."
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.goto(base_url + "evaluate.html#from-a-rank-to-a-number")
        page.wait_for_function(MATHJAX_DONE)
        page.evaluate("() => MathJax.startup.promise")
        page.locator("#from-a-rank-to-a-number").scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / "ndcg_derivation.png")
        page.goto(base_url + "api.html")
        page.screenshot(path=SCREENSHOTS / "api.png")
    for name in ("ndcg_derivation.png", "api.png"):
        assert (SCREENSHOTS / name).stat().st_size > 20_000, name
