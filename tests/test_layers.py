"""seqrec_nb.layers: the shared output layer, losses and recommender plumbing. Backend-neutral."""
import numpy as np
import pytest
from keras import ops

from seqrec_nb.data import leave_one_out, pad_sequences, synthetic_log
from seqrec_nb.layers import FMCRec, LastItemNet
from seqrec_nb.train import seed_everything


def test_scores_do_not_depend_on_how_histories_are_grouped():
    """`score` sorts histories by length and pads each group only to its longest: same as padding all to maxlen."""
    seed_everything(0, deterministic=False)
    syn = leave_one_out(synthetic_log(n_users=120, n_items=30, seed=2)[0])
    rec = FMCRec(dim=8, maxlen=12, n_negatives=5, epochs=1, batch_size=32).fit(syn, verbose=0)
    hist = syn.histories("test")
    direct = ops.convert_to_numpy(rec.net.logits(rec.net(pad_sequences(hist, 12))[:, -1]))
    np.testing.assert_allclose(rec._score(hist, chunk=7)[:, 1:], direct[:, 1:], atol=1e-5)


def test_net_errors():
    net = LastItemNet(10, dim=4, loss="bce"); net.build()
    with pytest.raises(ValueError, match="needs negatives"): net.compute_loss(np.ones((1, 3), "int32"), np.ones((1, 3), "int32"), net(np.ones((1, 3), "int32")))
    with pytest.raises(ValueError, match="10 probabilities"): net.set_sampler(np.ones(4) / 4)
