# Sphinx configuration for the seqrec_nb site. `scripts/build_site.py` copies this folder next to the
# processed notebooks and runs sphinx-build on the result; nothing here is meant to be run by hand.
project = "seqrec_nb"
author = "seqrec_nb contributors"
copyright = "seqrec_nb contributors"

extensions = ["myst_nb", "sphinx.ext.mathjax", "sphinx-mathjax-offline"]
root_doc = "index"
exclude_patterns = ["_build", "_notebooks", "**.ipynb_checkpoints"]

# The notebooks arrive executed (by the test run or by build_site.py): render their outputs, never run them.
nb_execution_mode = "off"
nb_render_markdown_format = "myst"          # show_doc output and Markdown() displays are MyST
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_dmath_double_inline = True
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "furo"
html_title = "seqrec_nb"
html_static_path = ["_static"]
html_css_files = ["seqrec.css"]
html_favicon = "_static/favicon.svg"
html_show_sourcelink = False
html_copy_source = False

# MathJax 3 comes from the sphinx-mathjax-offline package, which copies it into _static/mathjax: the
# site typesets its equations with no network access. MyST adds the classes of the math it parsed
# to this config, and MathJax typesets only those, so a dollar sign in prose or code stays text.
mathjax3_config = {"chtml": {"displayAlign": "center"}}
