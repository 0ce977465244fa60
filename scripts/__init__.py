"""Site tools, run from the repository root: `python scripts/build_site.py` builds the docs site, `python -m
scripts.make_readme` writes README.md from nbs/index.ipynb (`--check`: exit 1 unless the committed README is
current), and `scripts/gpu_check.py` is a standalone GPU check to copy to a remote machine."""
