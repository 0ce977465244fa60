"""Build the documentation site from the notebooks, offline and without Quarto.

    python scripts/build_site.py               # run the notebooks at test size, render into _site/
    python scripts/build_site.py --full        # ...with the `full` cells too (full-size runs)
    python scripts/build_site.py --no-execute  # render the outputs committed in nbs/ as they are
    python scripts/build_site.py --out DIR     # another output folder

nbdev renders its sites with Quarto, which these machines cannot install. This does the same job
with nbdev's own notebook processing and Sphinx:

1. **Execute.** Each notebook of `nbs/` is copied to `_site_build/executed/` and run there by
   nbdev's test runner (`nbdev-test --save`), with the same flags as the test suite; the test run
   (`conftest.py`) writes the same copies, so after `pytest` the site reuses them instead of running
   everything twice. A copy is reused only when its cells and flags match the notebook's.
2. **Process.** nbdev's doc processors (what `nbdev-proc-nbs` runs) turn each executed copy into a
   docs notebook: front matter, `#| hide`, `show_doc` entries for every exported name, and links
   from backticked names to their documentation. Quarto-only syntax is then translated for MyST,
   and links into the package documentation point at this site's API page.
3. **Render.** Sphinx with myst-nb renders the notebooks with their outputs (Furo theme, Sphinx's
   own offline search), plus `api.md`, the API reference from nbdev's `show_doc`. MathJax comes
   from the `sphinx-mathjax-offline` package, so equations typeset with no network.
"""
from __future__ import annotations

import argparse, hashlib, html, json, os, re, shutil, subprocess, sys, time
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
BUILD = ROOT / "_site_build"                 # the Sphinx sources and doctrees of a build (and the screenshots)
EXECUTED = ROOT / "_executed"                # executed copies: at the depth of nbs/, so relative paths hold
DOCS_CONF = ROOT / "docs"
DEFAULT_JUPYTERLAB = "http://localhost:8888"
_META_KEY = "seqrec_site"


def chapter_notebooks(nbs: Path = NBS) -> list[Path]:
    "The notebooks that become pages, in chapter order (file-name order; `_` and `.` files are scratch)."
    return sorted(p for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", ".")))


class SiteBuildError(RuntimeError):
    "A notebook failed to run, or Sphinx failed to render: nothing half-built is left as the site."


def _run_env() -> dict:
    "What a notebook run sees: the environment, with the data beside the checkout when SEQREC_DATA is unset."
    env = dict(os.environ)
    shared = ROOT.parent / "shared" / "data"
    if not env.get("SEQREC_DATA") and shared.is_dir(): env["SEQREC_DATA"] = str(shared)
    return env


def source_key(nb_path: Path, flags: str) -> str:
    """A hash of everything a notebook's run depends on: its cells, the library it imports (which the
    other notebooks export), the flags, backend and data location. A copy is current iff its key matches."""
    cells = json.loads(nb_path.read_text())["cells"]
    library = sorted((p.name, p.read_text()) for p in (ROOT / "seqrec_nb").glob("*.py"))
    env = _run_env()
    payload = json.dumps([[c["cell_type"], "".join(c["source"])] for c in cells] + [flags, library]
                         + [env.get(k, "") for k in ("KERAS_BACKEND", "SEQREC_DATA")])
    return hashlib.sha256(payload.encode()).hexdigest()


def is_current(copy: Path, src: Path, flags: str) -> bool:
    "Whether `copy` is a successful run of the present `src` with `flags`."
    if not copy.exists(): return False
    meta = json.loads(copy.read_text()).get("metadata", {}).get(_META_KEY, {})
    return meta.get("key") == source_key(src, flags)


def execute_copy(src: Path, dest: Path = EXECUTED, flags: str = "", timeout: float | None = None,
                 cell_timing_min: float = 20) -> subprocess.CompletedProcess:
    """Run a copy of notebook `src` in `dest` with nbdev's test runner and save its outputs there.

    On success the copy is stamped with `source_key(src, flags)`; on failure it is removed, so a
    broken or half-run copy is never rendered. Returns the runner's completed process."""
    dest.mkdir(parents=True, exist_ok=True)
    copy = dest / src.name
    shutil.copyfile(src, copy)
    # full-size cells train for many minutes: no per-cell limit then (nbdev's default is 600 s)
    cmd = [str(Path(sys.executable).parent / "nbdev-test"), str(copy), "--save", "--flags", flags,
           "--cell-timing-min", str(cell_timing_min)] + (["--cell-timeout", "0"] if "full" in flags.split() else [])
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_run_env())
    if res.returncode == 0 and "Success." in res.stdout:
        nb = json.loads(copy.read_text())
        nb.setdefault("metadata", {})[_META_KEY] = {"key": source_key(src, flags), "flags": flags}
        copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    else:
        copy.unlink(missing_ok=True)
    return res


def executed_notebooks(flags: str, execute: bool = True, log=print) -> list[Path]:
    """Current executed copies of every chapter, running the ones that are missing or out of date
    (or, with `execute=False`, the notebooks of nbs/ with their committed outputs)."""
    out = []
    for src in chapter_notebooks():
        copy = EXECUTED / src.name
        if not execute:
            out.append(src); continue
        if is_current(copy, src, flags):
            log(f"  {src.name}: reusing the executed copy from {copy.parent.relative_to(ROOT)}/")
        else:
            t0 = time.perf_counter()
            log(f"  {src.name}: executing (flags: {flags or 'none'}) ...")
            res = execute_copy(src, EXECUTED, flags)
            if not copy.exists():
                raise SiteBuildError(f"{src.name} failed to execute; nothing was rendered.\n{res.stderr[-6000:]}\n{res.stdout[-2000:]}")
            log(f"  {src.name}: done in {time.perf_counter() - t0:.0f} s")
        out.append(copy)
    return out


# --- processing: nbdev's doc processors, then Quarto syntax -> MyST ------------------------------

_DIRECTIVE = re.compile(r"^\s*#\|\s*(.*)$")
_SOURCE_LINK = re.compile(r"\[source\]\((\S+?)\)\{[^}]*\}")
_LEADING_RULE = re.compile(r"^\s*---\s*\n")       # show_doc opens each entry with a horizontal rule


def split_directives(src: str) -> tuple[dict, str]:
    "The leading `#| key: value` lines of a cell as a dict, and the rest of the source."
    lines, dirs = src.splitlines(), {}
    while lines and (m := _DIRECTIVE.match(lines[0])):
        key, _, val = m.group(1).partition(":")
        dirs[key.strip()] = val.strip().strip('"')
        lines.pop(0)
    while lines and not lines[0].strip(): lines.pop(0)
    return dirs, "\n".join(lines)


_PROGRESS = re.compile(r"\d+%\|")


def is_progress_bar(output: dict) -> bool:
    "A tqdm progress bar on stderr: a snapshot of a bar is noise on a static page."
    text = output.get("text", "")
    text = "".join(text) if isinstance(text, list) else text
    return output.get("output_type") == "stream" and output.get("name") == "stderr" and bool(_PROGRESS.search(text))


def cell_tags(dirs: dict) -> list[str] | None:
    "myst-nb tags for a code cell's Quarto directives; None when the cell is not shown at all."
    if dirs.get("include") == "false": return None
    tags = []
    if dirs.get("echo") == "false": tags.append("remove-input")
    if dirs.get("output") == "false": tags.append("remove-output")
    return tags


class Linker:
    "Rewrites links into the package's published docs so they point at this site's pages and API page."

    def __init__(self, doc_url: str, api_anchors: dict[tuple[str, str], str], pages: set[str]):
        self.api, self.pages = api_anchors, pages
        self.pattern = re.compile(r"\]\(" + re.escape(doc_url.rstrip("/")) + r"/([\w.-]+)\.html(?:#([^)\s]*))?\)")

    def _target(self, m: re.Match) -> str:
        page, anchor = m.group(1), m.group(2) or ""
        if (page, anchor) in self.api: return f"](api.md#{self.api[(page, anchor)]})"
        if page in self.pages: return f"]({page}.ipynb)"
        return m.group(0)

    def __call__(self, md: str) -> str:
        md = _SOURCE_LINK.sub(lambda m: "" if m.group(1).endswith("#LNone") else
                              f'<a class="seqrec-source" href="{html.escape(m.group(1))}">[source]</a>', md)
        return self.pattern.sub(self._target, md)


def _md_cell(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def page_links(src_name: str, page: str, jupyterlab: str, module: str | None) -> str:
    "The line under a chapter title: download the notebook, open it in JupyterLab, its API section."
    links = [f"{{download}}`Download the notebook <_notebooks/{src_name}>`",
             f"[Open in JupyterLab]({jupyterlab.rstrip('/')}/lab/tree/nbs/{src_name})"]
    if module: links.append(f"[API reference](api.md#{module})")
    return '<div class="seqrec-nblinks">\n\n' + " · ".join(links) + "\n\n</div>"


def docs_notebook(executed: Path, src_name: str, linker: Linker, jupyterlab: str, module: str | None) -> tuple[str, dict]:
    "nbdev's doc processing of one executed notebook, translated for myst-nb: (page name, notebook)."
    from fastcore.nbio import read_nb
    from nbdev.processors import FilterDefaults
    nb = read_nb(executed)
    FilterDefaults()(nb)
    fm = nb.get("frontmatter_", {}) or {}
    page = Path(fm.get("output-file", executed.stem + ".html")).stem
    cells = [_md_cell(f"# {fm.get('title', page)}\n\n" + (f"> {fm['description']}\n" if fm.get("description") else "")),
             _md_cell(page_links(src_name, page, jupyterlab, module))]
    for c in nb.cells:
        if c.cell_type == "raw": continue                     # the YAML front matter
        if c.cell_type == "markdown":
            if c.source.startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"): continue
            cells.append(_md_cell(linker(c.source))); continue
        dirs, source = split_directives(c.source)
        tags = cell_tags(dirs)
        if tags is None: continue
        outputs = []
        for o in c.get("outputs", []):
            o = {k: v for k, v in dict(o).items() if not k.endswith("_")}
            if is_progress_bar(o): continue
            if "text/markdown" in o.get("data", {}):
                md = o["data"]["text/markdown"]
                md = _LEADING_RULE.sub("", "".join(md) if isinstance(md, list) else md)
                o["data"] = {**o["data"], "text/markdown": linker(md)}
            outputs.append(o)
        cells.append({"cell_type": "code", "execution_count": c.get("execution_count"), "metadata": {"tags": tags} if tags else {},
                      "outputs": outputs, "source": source})
    meta = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
            "language_info": {"name": "python", "pygments_lexer": "ipython3"}}
    return page, {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


# --- the API page ------------------------------------------------------------------------------

def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def api_entries() -> dict[str, list[tuple[str, str, str]]]:
    "Per module, in nbdev's index order: (qualified name within the module, docs page, anchor) of each public export."
    import importlib
    from seqrec_nb._modidx import d
    out = {}
    for mod, syms in d["syms"].items():
        exported = set(getattr(importlib.import_module(mod), "__all__", []))
        rows = []
        for sym, (url, _) in syms.items():
            name = sym[len(mod) + 1:]
            if not _public(name) or name.split(".")[0] not in exported: continue
            page, _, anchor = url.partition(".html#")
            rows.append((name, page, anchor))
        if rows: out[mod] = rows
    order = {output_page(nb): i for i, nb in enumerate(chapter_notebooks())}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[1][0][1], len(order))))


def api_constants(mod: str, entries) -> list[tuple[str, str]]:
    "The names in `mod.__all__` that nbdev's index does not list (module constants), with a short repr of each."
    import importlib, reprlib
    module = importlib.import_module(mod)
    documented = {name.split(".")[0] for name, _, _ in entries.get(mod, [])}
    short = reprlib.Repr(); short.maxstring = short.maxother = 120
    return [(n, _constant_repr(getattr(module, n), short)) for n in getattr(module, "__all__", []) if n not in documented]


def _constant_repr(value, short) -> str:
    "A short repr of a module constant; a registry of objects (a dict of instances) is summarised by its keys."
    if isinstance(value, dict) and value and not all(isinstance(v, (int, float, str, bool, tuple, type(None)))
                                                       for v in value.values()):
        return "{" + ", ".join(f"{k!r}: {type(v).__name__}(...)" for k, v in value.items()) + "}"
    if type(value).__repr__ is object.__repr__ or not _is_python(short.repr(value)):
        return f"{type(value).__name__}(...)"
    return short.repr(value)


def _is_python(text: str) -> bool:
    "Whether `text` parses as a Python expression (reprs such as `<class ...>` do not)."
    import ast
    try: ast.parse(text, mode="eval")
    except SyntaxError: return False
    return True


def api_anchor_map(entries) -> dict[tuple[str, str], str]:
    "(docs page, nbdev anchor) -> its label on the API page; page-qualified where two modules share an anchor."
    seen = {}
    for rows in entries.values():
        for _, page, anchor in rows: seen.setdefault(anchor, set()).add(page)
    return {(page, anchor): "api-" + (anchor if len(seen[anchor]) == 1 else f"{page}-{anchor}")
            for rows in entries.values() for _, page, anchor in rows}


def _api_entry(md: str, label: str) -> str:
    "One show_doc entry for api.md: a MyST label on its heading, the [source] link moved under the heading."
    md = _LEADING_RULE.sub("", md)
    source = re.search(r"^<a class=\"seqrec-source\".*$", md, re.M)
    if source: md = md.replace(source.group(0) + "\n", "", 1)
    md = md.lstrip()
    head, _, rest = md.partition("\n")
    return f"({label})=\n{head}\n" + (source.group(0) + "\n" if source else "") + rest


def api_markdown(entries, anchors, linker: Linker, chapter_of: dict[str, tuple[str, str]]) -> str:
    "api.md: nbdev's `show_doc` of every public export, grouped by module, each entry with a MyST label."
    import importlib
    from nbdev.showdoc import show_doc
    parts = ["# API reference", "",
             "Everything `seqrec_nb` exports, module by module: nbdev's `show_doc` rendering of each "
             "signature and docstring. Each module is written in the chapter named under its heading, "
             "which shows the same entries among the prose and tests that explain them.", ""]
    used = set(anchors.values())
    for mod, rows in entries.items():
        page = rows[0][1]
        title, page_name = chapter_of.get(page, (page, page))
        parts += [f"({mod})=", f"## `{mod}`", "", f"Written in the chapter [{title}]({page_name}.ipynb).", ""]
        module = importlib.import_module(mod)
        for name, page, anchor in rows:
            obj = module
            for part in name.split("."): obj = getattr(obj, part)
            md = show_doc(obj, name=name, title_level=3 if "." not in name else 4)._repr_markdown_()
            parts += ["---", "", _api_entry(linker(md), anchors[(page, anchor)]), ""]
        for name, value in api_constants(mod, entries):
            label = f"api-{name.lower()}"
            if label in used: label = f"api-{mod.rsplit('.', 1)[-1]}-{name.lower()}"
            used.add(label)
            parts += ["---", "", f"({label})=", f"### {name}", "", "```python", f"{name} = {value}", "```", ""]
    return "\n".join(parts)


# --- the build -----------------------------------------------------------------------------------

def build(out: Path, flags: str = "", execute: bool = True, jupyterlab: str = DEFAULT_JUPYTERLAB,
          work: Path = BUILD, log=print) -> Path:
    "Build the site into `out` (Sphinx sources and doctrees in `work`) and return the path of its landing page."
    os.chdir(ROOT)                                   # nbdev reads pyproject.toml from the working directory
    from nbdev.config import get_config
    cfg = get_config()
    doc_url = cfg.doc_host.rstrip("/") + "/" + cfg.doc_baseurl.strip("/")
    log("1/3 notebooks")
    notebooks = executed_notebooks(flags, execute, log)

    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(DOCS_CONF, src)
    (src / "_notebooks").mkdir()
    for nb in chapter_notebooks(): shutil.copyfile(nb, src / "_notebooks" / nb.name)

    log("2/3 processing (nbdev doc processors, show_doc, links)")
    entries = api_entries()
    anchors = api_anchor_map(entries)
    module_of_page = {rows[0][1]: mod for mod, rows in entries.items()}
    linker = Linker(doc_url, anchors, {output_page(nb) for nb in notebooks})
    chapter_of, order = {}, []
    for nb in notebooks:
        page, doc = docs_notebook(nb, nb.name, linker, jupyterlab, module_of_page.get(output_page(nb)))
        (src / f"{page}.ipynb").write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        chapter_of[page] = (doc["cells"][0]["source"].splitlines()[0].removeprefix("# "), page)
        if page != "index": order.append(page)
    (src / "api.md").write_text(api_markdown(entries, anchors, linker, chapter_of))
    index = json.loads((src / "index.ipynb").read_text())
    toc = "\n".join(order + ["api"])
    index["cells"].append(_md_cell(f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toc}\n```"))
    (src / "index.ipynb").write_text(json.dumps(index, indent=1, ensure_ascii=False))

    log("3/3 rendering with Sphinx")
    if out.exists():
        if any(out.iterdir()) and not (out / "objects.inv").exists():
            raise SiteBuildError(f"{out} exists and is not a site this script built: not deleting it")
        shutil.rmtree(out)
    res = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                          "-d", str(work / "doctrees"), str(src), str(out)], capture_output=True, text=True)
    if res.returncode != 0:
        raise SiteBuildError(f"sphinx-build failed:\n{res.stderr[-8000:]}")
    log(f"site written to {out}/ (open {out / 'index.html'})")
    return out / "index.html"


@lru_cache
def output_file(nb: Path) -> str:
    "The page name nbdev gives a notebook (`00_data.ipynb` -> `data.html`)."
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor
    from fastcore.nbio import read_nb
    n = read_nb(nb)
    NBProcessor(nb=n, procs=[FrontmatterProc]).process()
    return (n.get("frontmatter_", {}) or {}).get("output-file", nb.stem + ".html")


def output_page(nb: Path) -> str:
    "The page name of a notebook on the site (`00_data.ipynb` -> `data`)."
    return Path(output_file(nb)).stem


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default: _site/)")
    p.add_argument("--full", action="store_true", help="also run the cells flagged `full` (full-size runs; slow)")
    p.add_argument("--no-execute", action="store_true", help="render the outputs committed in nbs/ without running anything")
    p.add_argument("--jupyterlab", default=os.environ.get("SEQREC_JUPYTERLAB_URL", DEFAULT_JUPYTERLAB),
                   help=f"the JupyterLab server the 'Open in JupyterLab' links point at (default {DEFAULT_JUPYTERLAB}, "
                        "a `jupyter lab` started in the repository root)")
    p.add_argument("--work", type=Path, default=BUILD, help="folder for the Sphinx sources and doctrees (default: _site_build/)")
    a = p.parse_args(argv)
    try: build(a.out.resolve(), "full" if a.full else "", not a.no_execute, a.jupyterlab, a.work.resolve())
    except SiteBuildError as e: sys.exit(str(e))


if __name__ == "__main__":
    main()
