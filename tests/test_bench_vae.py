"""`benchmarks.vae` at a tiny size, so that the benchmark cannot rot between full runs."""
import keras
import numpy as np
import pytest

from benchmarks import vae as bench
from seqrec_nb.data import BagBatches, NextItemBatches

pytestmark = pytest.mark.one_backend       # plumbing (processes, files, scripts): CI runs this file on TensorFlow only


def test_bag_flop_count_by_hand():
    """Three users with items (the empty history is dropped), batches of 2 and 1: N = 5, H = 3, L = 2."""
    batches = BagBatches([[1, 2], [], [3], [1, 4, 2]], n_items=4, batch_size=2)
    # per user: encoder first layer 2*5*3 = 30 forward + 30 backward (weights only), second 2*3*4 = 24 (Mult-VAE's
    # encoder outputs 2L = 4) x3; decoder 2*(2*3 + 3*5) = 42 x3
    assert bench.bag_epoch_flops(batches, hidden=3, latent=2, variational=True) == {"rows": 3, "encoder": 3 * (60 + 72),
                                                                                   "decoder": 3 * 3 * 42}
    # Mult-DAE's encoder outputs L = 2: second layer 2*3*2 = 12 x3; the first batch alone holds 2 users
    assert bench.bag_epoch_flops(batches, 3, 2, variational=False) == {"rows": 3, "encoder": 3 * (60 + 36), "decoder": 3 * 3 * 42}
    assert bench.bag_epoch_flops(batches, 3, 2, True, n_batches=1) == {"rows": 2, "encoder": 2 * (60 + 72), "decoder": 2 * 3 * 42}
    assert bench.total_flops(bench.bag_epoch_flops(batches, 3, 2, True)) == 3 * (60 + 72) + 3 * 3 * 42


def test_seq_flop_count_by_hand():
    """Two sequences of 5 items, one batch of width 4 (P = 8 positions): d = 3, L = 2, N = 5."""
    batches = NextItemBatches([[1, 2, 3, 4, 1], [2, 3, 4, 1, 2]], n_items=4, maxlen=4, batch_size=2, shuffle=False)
    f = bench.seq_epoch_flops(batches, dim=3, latent=2)
    # forward: GRU 2*8*(27 + 27) = 864; latent 2*8*3*4 = 192 and back 2*8*2*3 = 96; output 2*8*3*5 = 240
    assert f == {"rows": 2, "positions": 8, "gru": 3 * 864, "latent": 3 * (192 + 96), "output": 3 * 240}
    assert bench.total_flops(f) == 3 * (864 + 288 + 240)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one backend is enough for the script's plumbing")
def test_one_configuration_runs_on_real_data():
    """Mult-DAE on two batches of Games (the sequence model's branch differs only in the FLOP count tested above)."""
    r = bench.run_one("dae", jit=False, n_batches=2)
    assert r["rows"] == 2 * 500 and r["epoch_s"] > 0 and r["first_epoch_s"] > 0 and np.isfinite(r["final_loss"])
    assert r["peak_rss_mib"] >= r["rss_before_training_mib"] and r["rate_gflops"] > 0 and r["square_gflops"] > 0
    n = r["n_items"] + 1
    assert r["flops"]["encoder"] == 1000 * (4 * n * 600 + 6 * 600 * 200)
