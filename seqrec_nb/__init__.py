__version__ = "0.0.1"

# TensorFlow's native start-up lines (a CUDA probe, CPU features, absl's notice) are written by C++ straight to
# file descriptor 2 while Keras loads it, before TF_CPP_MIN_LOG_LEVEL or Python's logging can filter them.
# Unless the user chose a level (or set SEQREC_DEBUG=1), Keras is imported here under
# `seqrec_nb.cli.native_stderr_silenced`, with TensorFlow's level set to 2 (errors only); an import error still
# raises as usual.
def _import_keras_quietly():
    import os, sys
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or os.environ.get("SEQREC_DEBUG") == "1" or "keras" in sys.modules: return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from .cli import native_stderr_silenced           # the console commands' helper: it imports nothing heavy
    with native_stderr_silenced(): import keras  # noqa: F401

_import_keras_quietly()
del _import_keras_quietly
