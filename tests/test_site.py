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

import os

import pytest
from browser import SCREENSHOTS, PageProblems, chromium, serve
from docutils.nodes import make_id

from scripts.build_site import chapter_notebooks, output_page

ROOT = Path(__file__).resolve().parents[1]

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
def work(tmp_path_factory):
    "This build's Sphinx sources and doctrees, apart from any other build."
    return tmp_path_factory.mktemp("site_work")


@pytest.fixture(scope="module")
def site(request, tmp_path_factory, work):
    "The site, built with the README's command (reusing the notebooks this pytest run has executed)."
    failed = getattr(request.config, "seqrec_failed_notebooks", set())
    if failed: pytest.fail(f"not rendering the site: {sorted(failed)} failed to execute above")
    out = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "scripts/build_site.py", "--out", str(out), "--work", str(work)]
    if os.environ.get("SEQREC_FULL"): cmd.append("--full")
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
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


def _plots(nb: Path) -> int:
    "Image outputs of a notebook, outside cells whose output is not shown."
    n = 0
    for c in json.loads(nb.read_text())["cells"]:
        hidden = "remove-output" in c.get("metadata", {}).get("tags", []) or re.search(r"#\|\s*(hide|output:\s*false)", "".join(c["source"]))
        if not hidden: n += sum("image/png" in o.get("data", {}) for o in c.get("outputs", []))
    return n


def expected_plots(site_src: Path) -> dict[str, int]:
    "Per page, the plots it must show: as many as the committed notebook holds, or its fresh run if more."
    return {f"{output_page(nb)}.html": max(_plots(nb), _plots(site_src / f"{output_page(nb)}.ipynb"))
            for nb in chapter_notebooks()}


def test_every_notebook_is_a_page(site):
    pages = set(site_pages(site))
    expected = {f"{output_page(nb)}.html" for nb in chapter_notebooks()} | {"index.html", "api.html", "search.html"}
    assert expected <= pages, expected - pages
    nav = (site / "index.html").read_text()
    for nb in chapter_notebooks():                      # in the navigation, in chapter order
        if output_page(nb) != "index": assert f'href="{output_page(nb)}.html"' in nav, nb.name
    positions = [nav.find(f'href="{output_page(nb)}.html"') for nb in chapter_notebooks() if output_page(nb) != "index"]
    assert positions == sorted(positions), "chapters out of order in the navigation"


def test_every_page_reads_cleanly(site, base_url, work):
    """No console errors or failed requests, equations typeset, images non-empty, internal links resolve.

    Requests that leave the site are aborted, as they would fail on a machine with no network: a
    page that needs a CDN (for MathJax, fonts, anything) fails here even where CI has network."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    plots = expected_plots(work / "src")
    links, problems, typeset = set(), {}, {}
    with chromium() as browser:
        for rel in site_pages(site):
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base_url) else route.abort())
            seen = PageProblems(page)
            page.goto(base_url + rel, wait_until="load")
            for what, wait in [("MathJax to load", lambda: page.wait_for_function(MATHJAX_DONE, timeout=30_000)),
                               ("MathJax to typeset", lambda: page.evaluate(
                                   "() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true")),
                               ("the network to go idle", lambda: page.wait_for_load_state("networkidle", timeout=30_000))]:
                try: wait()
                except PlaywrightTimeout:
                    seen.items.append(f"timed out waiting for {what}"); break
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
            want = plots.get(rel, 0)
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
    "Each page links its notebook (download, JupyterLab); each chapter's prose links into the API page."
    api_ids = ids_of(site / "api.html")
    for nb in chapter_notebooks():
        page = output_page(nb)
        html = (site / f"{page}.html").read_text()
        download = re.search(r'href="(_downloads/[^"]+\.ipynb)"', html)
        assert download, f"{page}: no download link"
        assert json.loads((site / download.group(1)).read_text())["cells"] == json.loads(nb.read_text())["cells"]
        assert f"/lab/tree/nbs/{nb.name}" in html, f"{page}: no JupyterLab link"
        if page == "index": continue
        prose = re.sub(r'<div class="seqrec-nblinks.*?</div>', "", html, flags=re.S)   # not the header's own link
        to_api = set(re.findall(r'href="api\.html#([^"]+)"', prose))
        assert to_api, f"{page}: its prose does not link to the API reference"
        assert to_api <= api_ids, to_api - api_ids


def test_api_page_documents_every_export(site):
    "Every name in every module's `__all__` has an entry on the API page, with its signature and docstring."
    import importlib
    import seqrec_nb
    api_ids = ids_of(site / "api.html")
    text = re.sub(r"<[^>]+>", "", (site / "api.html").read_text())
    modules = sorted(p.stem for p in Path(seqrec_nb.__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    # a name two modules export (`main`) gets a page-qualified label, `api-<module>-<name>`
    missing = [f"{m}.{n}" for m in modules for n in getattr(importlib.import_module(f"seqrec_nb.{m}"), "__all__", [])
               if make_id(f"api-{n}") not in api_ids and make_id(f"api-{m}-{n}") not in api_ids]
    assert not missing, missing
    from seqrec_nb.data import leave_one_out, to_interactions
    assert "def to_interactions(" in text and to_interactions.__doc__.splitlines()[0] in text
    assert leave_one_out.__doc__.splitlines()[0].strip() in text


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
