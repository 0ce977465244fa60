"""pytest collects `tests/` and executes every notebook in `nbs/` as one test case each.

Each notebook runs in its own process through nbdev's test runner, so nbdev's test flags are
honoured: cells flagged with a flag in `tst_flags` (`notest`, `full`) are skipped, and
`SEQREC_FULL=1` runs the `full` cells too. A notebook that raises fails its test, with the
notebook's traceback in the report.

The runner works on a copy in `_site_build/executed/` and saves the outputs there
(`scripts/build_site.py`'s `execute_copy`), never in `nbs/`: the site test, which runs after the
notebooks, renders those copies instead of executing every notebook a second time.

The suite never downloads: `SEQREC_OFFLINE=1` is set for it. Data comes from `SEQREC_DATA`
(defaulting to `../shared/data` beside the checkout when that exists) or from the user cache.
"""
import os
from pathlib import Path

import pytest

from scripts.build_site import EXECUTED, execute_copy        # importable from the root: pyproject sets pytest's `pythonpath`

ROOT = Path(__file__).resolve().parent
_shared = ROOT.parent / "shared" / "data"
if not os.environ.get("SEQREC_DATA") and _shared.is_dir(): os.environ["SEQREC_DATA"] = str(_shared)
os.environ["SEQREC_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.seqrec_failed_notebooks = set()      # the site test refuses to render a notebook that just failed


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".ipynb" and file_path.parent.name == "nbs" and not file_path.name.startswith(("_", ".")):
        return NotebookFile.from_parent(parent, path=file_path)


class NotebookFile(pytest.File):
    def collect(self):
        yield NotebookItem.from_parent(self, name=self.path.stem)


class NotebookFailed(Exception):
    pass


class NotebookItem(pytest.Item):
    def runtest(self):
        flags = "full" if os.environ.get("SEQREC_FULL") else ""
        res = execute_copy(self.path, EXECUTED, flags)
        self.add_report_section("call", "notebook output", res.stdout[-5000:])
        if res.returncode != 0 or "Success." not in res.stdout:
            self.config.seqrec_failed_notebooks.add(self.path.name)
            raise NotebookFailed(f"{self.path.name} failed:\n{res.stderr[-8000:]}\n{res.stdout[-2000:]}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, NotebookFailed): return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"notebook {self.path.name}"


_LAST = ("test_site.py", "test_jupyterlab.py")


def pytest_collection_modifyitems(items):
    "Browser tests last: the site test renders the notebooks the notebook items have just executed."
    items.sort(key=lambda item: item.path.name in _LAST)
