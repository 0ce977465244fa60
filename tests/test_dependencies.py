"""The dependency rules of DESIGN.md, read from the package's own import statements: the foundation modules import
only what lies below them, a building block only the foundation, a model module never imports another model module
(only the foundation and the blocks), nothing imports the command-line
modules, and no module imports another's private names."""
import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_free      # no Keras model runs here: CI runs this file on TensorFlow only

PACKAGE = Path(__file__).resolve().parent.parent / "seqrec_nb"
FOUNDATION = ["data", "evaluate", "train", "layers"]           # each may import those before it
# the derivation chapters' building blocks (ARMA, cells, attention, the VAE's and the GAN's pieces, the held-out-users
# protocol): each may import the foundation, never another block or a model
BLOCKS = ["arma", "recurrent", "transformer", "variational", "adversarial", "heldout"]
MODELS = ["arima", "lstm", "attention", "vae", "gan"]          # each may import the foundation and the blocks, never each other
TOP = ["benchmark", "tune", "cli"]                            # may import anything; nothing imports them
# the hand-kept package __init__ silences native logging while Keras loads, with the console helper (no heavy imports)
EXCEPTIONS = {("__init__", "cli")}


def imports(module: str) -> list[tuple[str, str]]:
    "`(imported module, imported name)` for every relative import in `seqrec_nb/<module>.py`."
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                if node.module is None: out.append((alias.name, ""))          # from . import lstm / __version__
                else: out.append((node.module.split(".")[0], alias.name))
    return out


def modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "_modidx")


def allowed(module: str) -> set:
    if module in FOUNDATION: return set(FOUNDATION[:FOUNDATION.index(module)])
    if module in BLOCKS: return set(FOUNDATION)
    if module in MODELS: return set(FOUNDATION + BLOCKS)
    return set(modules())


def test_every_module_is_classified():
    assert set(modules()) - {"__init__"} <= set(FOUNDATION + BLOCKS + MODELS + TOP)


@pytest.mark.parametrize("module", modules())
def test_imports_follow_the_dependency_direction(module):
    ours = {m for m, _ in imports(module) if m in modules()}
    wrong = sorted(m for m in ours if (m not in allowed(module) or m in TOP) and (module, m) not in EXCEPTIONS and m != module)
    assert not wrong, f"seqrec_nb.{module} imports {', '.join(wrong)}, against DESIGN.md's dependency direction"


@pytest.mark.parametrize("module", modules())
def test_no_private_names_cross_modules(module):
    private = sorted(f"{m}.{n}" for m, n in imports(module) if n.startswith("_") and n != "__version__")
    assert not private, f"seqrec_nb.{module} imports private names {', '.join(private)}"


def test_the_rules_catch_a_violation(tmp_path, monkeypatch):
    "The checks fail on a model module that imports another model and a private name, and on a block that imports a model."
    fake = tmp_path / "seqrec_nb"
    fake.mkdir()
    for p in PACKAGE.glob("*.py"): (fake / p.name).write_text(p.read_text())
    (fake / "gan.py").write_text((fake / "gan.py").read_text() + "\nfrom .lstm import _private\n")
    (fake / "transformer.py").write_text((fake / "transformer.py").read_text() + "\nfrom .attention import SASRec\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    with pytest.raises(AssertionError, match="imports lstm"): test_imports_follow_the_dependency_direction("gan")
    with pytest.raises(AssertionError, match="imports attention"): test_imports_follow_the_dependency_direction("transformer")
    test_imports_follow_the_dependency_direction("attention")         # a model importing a block is allowed
    with pytest.raises(AssertionError, match="private names lstm._private"): test_no_private_names_cross_modules("gan")
