__version__ = "0.0.1"

# TensorFlow's native start-up lines (a CUDA probe, CPU features, absl's notice) are written by C++ straight to
# file descriptor 2 while Keras loads it, before TF_CPP_MIN_LOG_LEVEL or Python's logging can filter them.
# Unless the user chose a level (or set SEQREC_DEBUG=1), Keras is imported here with that descriptor pointed at
# /dev/null and TensorFlow's level set to 2 (errors only); an import error still raises as usual. The console
# commands do the same in `seqrec_nb.cli`.
def _import_keras_quietly():
    import os, sys
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or os.environ.get("SEQREC_DEBUG") == "1" or "keras" in sys.modules: return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        if sys.stderr is not None: sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError): return           # no usable descriptor 2: nothing to silence
    try:
        with open(os.devnull, "w") as null: os.dup2(null.fileno(), 2)
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)

_import_keras_quietly()
del _import_keras_quietly
