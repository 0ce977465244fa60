"""Readers run the notebooks in JupyterLab: run one there through the UI, in headless Chromium.

The test starts `jupyter lab` on 127.0.0.1 with its own token and temporary settings, workspace,
config, data and runtime folders, opens a *copy* of `nbs/00_data.ipynb` with its saved outputs
cleared (the repository's notebook is never written), runs every cell from the Run menu, waits for the kernel to go idle, and checks
that no cell shows an error and that every plot rendered. The server is stopped at the end, within
a bounded time, whatever happened.
"""
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import SCREENSHOTS, chromium, free_port, require_browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "nbs" / "00_data.ipynb"
RUN_TIMEOUT_S = 900


def _tree_state() -> str:
    "The repository's working-tree status and the notebook's hash: any write into the checkout changes it."
    status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=ROOT, capture_output=True, text=True).stdout
    return status + hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest()


def _image_outputs(nb: Path) -> int:
    return sum(1 for c in json.loads(nb.read_text())["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {}))


def _code_cells(nb: Path) -> int:
    return sum(c["cell_type"] == "code" for c in json.loads(nb.read_text())["cells"])


def _cleared_copy(src: Path, dst: Path):
    "`src` without outputs or execution counts, so everything the test sees was computed in this run."
    nb = json.loads(src.read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "code": c["outputs"], c["execution_count"] = [], None
    dst.write_text(json.dumps(nb, indent=1))


def _lab_settings(folder: Path):
    "User settings for the test's JupyterLab: render every cell (no windowing), no news or update checks."
    settings = {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
                "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
    for plugin, values in settings.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 serving a work folder holding a copy of the notebook; yields (url, token, folder)."
    require_browser()
    work = tmp_path / "work"
    work.mkdir()
    _cleared_copy(NOTEBOOK, work / NOTEBOOK.name)
    _lab_settings(tmp_path / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}     # the kernel's inline backend draws the plots
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"),                  # only this venv's python3 kernel
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               IPYTHONDIR=str(tmp_path / "ipython"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
           "--ServerApp.allow_root=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200: break
            except OSError: pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'server.log').read_text()[-4000:]}")
            time.sleep(0.5)
        yield url, token, work
    finally:
        proc.terminate()
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill(); proc.wait(timeout=30)
        log.close()


def test_data_notebook_runs_in_jupyterlab(lab):
    url, token, work = lab
    before = _tree_state()
    n_code = _code_cells(NOTEBOOK)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
        page.wait_for_function(f"document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length === {n_code}",
                               timeout=120_000)                                             # every cell is on the page
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)   # kernel started
        assert page.locator(".jp-RenderedImage img").count() == 0        # nothing drawn before the run
        # The indicator can read idle while the page is still connecting to the kernel, and a Run All issued then is
        # silently lost (seen on a loaded machine: every prompt stayed blank). So: Run All, and if no cell has
        # started a minute later, Run All again (at most three times); a cell that started means the run is on.
        started = "() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')].some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        for attempt in range(3):
            page.click(".lm-MenuBar-itemLabel:text-is('Run')")
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
            try:
                page.wait_for_function(started, timeout=60_000, polling=500)
                break
            except PlaywrightTimeout:
                if attempt == 2: raise
        # Done when every code cell shows an execution count and the kernel is idle again
        # (or a cell failed: Run All stops there, and the checks below say which).
        page.wait_for_function(
            """() => {
                 const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
                 const idle = document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle';
                 const failed = document.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]');
                 return idle && (failed || (prompts.length && prompts.every(t => /\\[\\d+\\]/.test(t))));
               }""", timeout=RUN_TIMEOUT_S * 1000, polling=1000)
        errors = page.eval_on_selector_all('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]',
                                           "es => es.map(e => e.innerText.slice(0, 2000))")
        images = page.eval_on_selector_all(".jp-RenderedImage img", "is => is.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        prompts = page.eval_on_selector_all(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt", "ps => ps.map(p => p.textContent)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if images: page.locator(".jp-RenderedImage img").last.scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / "jupyterlab_00_data.png")
    assert not errors, errors[0]
    assert len(prompts) == n_code and all(re.search(r"\[\d+\]", p) for p in prompts), prompts   # every cell ran
    assert len(images) >= _image_outputs(NOTEBOOK) > 0, (len(images), _image_outputs(NOTEBOOK))
    assert all(ok and w > 100 and h > 100 for ok, w, h in images), images
    assert _tree_state() == before                        # nothing was written into the checkout
