__version__ = "0.0.1"

# TensorFlow's native start-up lines (a CUDA probe, CPU features, absl's notice) are written by C++ straight to
# file descriptor 2 while Keras loads it, before TF_CPP_MIN_LOG_LEVEL or Python's logging can filter them.
# Unless the user chose a level, Keras is imported here with that descriptor pointed at /dev/null; an import
# error still raises as usual. The console commands do the same in `seqrec_nb.cli`.
def _import_keras_quietly():
    import os, sys
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "keras" in sys.modules: return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try: sys.stderr.flush(); saved = os.dup(2)
    except (OSError, ValueError): return           # no usable descriptor 2: nothing to silence
    try:
        with open(os.devnull, "w") as null: os.dup2(null.fileno(), 2)
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)

_import_keras_quietly()
del _import_keras_quietly
