"""The from-scratch LSTM cell and the paper-style transformer block against their equations in NumPy.

Finite differences of the code under test check only its differentiation: an LSTM without its forget
gate, or a block whose residuals start from LN(x), agrees with its own finite differences and passes
every check of causality and padding. These tests compare with the equations written out independently,
and each also runs its comparison on the bug it guards against, which must fail.

Backend-neutral: CI runs this file on TensorFlow, JAX and PyTorch.
"""
import keras
import numpy as np
import pytest
from keras import ops

import seqrec_nb.recurrent
from seqrec_nb.transformer import TransformerBlock
from seqrec_nb.recurrent import LSTMCell, lstm_step, run_cell
from seqrec_nb.train import value_and_grad

BACKEND = keras.backend.backend()


def np_(x): return ops.convert_to_numpy(x)


def sigmoid(a): return 1 / (1 + np.exp(-a))


def lstm_forward_np(x, h, c, kernel, recurrent_kernel, bias, mask):
    "The LSTM equations over `x` `(batch, time, features)`, blocks i, f, g, o: h at every step and the final h, c."
    n, outputs = h.shape[-1], []
    block = lambda w, k: w[..., k * n:(k + 1) * n]
    for t in range(x.shape[1]):
        z = [x[:, t] @ block(kernel, k) + h @ block(recurrent_kernel, k) + block(bias, k) for k in range(4)]
        i, f, g, o = sigmoid(z[0]), sigmoid(z[1]), np.tanh(z[2]), sigmoid(z[3])
        c_t = f * c + i * g
        h_t = o * np.tanh(c_t)
        h, c = np.where(mask[:, t:t + 1], h_t, h), np.where(mask[:, t:t + 1], c_t, c)
        outputs.append(h)
    return np.stack(outputs, 1), h, c


def step_without_forget_gate(x, h_prev, c_prev, kernel, recurrent_kernel, bias):
    "The bug: f = 1, the cell never forgets."
    z = ops.matmul(x, kernel) + ops.matmul(h_prev, recurrent_kernel) + bias
    zi, _, zg, zo = ops.split(z, 4, axis=-1)
    c = c_prev + ops.sigmoid(zi) * ops.tanh(zg)
    return ops.sigmoid(zo) * ops.tanh(c), c


def lstm_cell_error():
    "Max |LSTMCell - equations| over the outputs at real steps and both final states of 10 masked steps."
    r = np.random.default_rng(0)
    x = r.normal(size=(3, 10, 4)).astype("float32")
    mask = np.ones((3, 10), bool); mask[0, :3] = False; mask[1, 4:6] = False
    cell = LSTMCell(6); cell.build((None, 4))
    cell.set_weights([r.normal(size=w.shape).astype("float32") * 0.5 for w in cell.get_weights()])
    states = [r.normal(size=(3, 6)).astype("float32") for _ in range(2)]
    out, (h, c) = run_cell(cell, x, mask, initial_state=states)
    want = lstm_forward_np(x.astype("float64"), *states, *[w.astype("float64") for w in cell.get_weights()], mask)
    # at a padded step run_cell repeats the previous output (zeros before the first real step), as Keras does
    return max(np.abs(np_(out) - want[0])[mask].max(), *[np.abs(np_(a) - b).max() for a, b in zip((h, c), want[1:])])


def lstm_gradient_error(step):
    "Max relative error of the loss and its gradient (autodiff of `step`) against the equations' loss and its central differences."
    r = np.random.default_rng(1)
    u, n_in, steps = 3, 2, 4
    args = [r.normal(size=(2, steps, n_in)), r.normal(size=(2, u)), r.normal(size=(2, u)),
            r.normal(size=(n_in, 4 * u)) * 0.5, r.normal(size=(u, 4 * u)) * 0.5, r.normal(size=(4 * u,))]
    mask = np.array([[0, 1, 1, 1], [1, 1, 1, 1]], bool)
    wv = r.normal(size=(2, steps, u))

    def loss(x, h, c, kernel, recurrent_kernel, bias):
        out = []
        for t in range(steps):
            hn, cn = step(x[:, t], h, c, kernel, recurrent_kernel, bias)
            keep = ops.convert_to_tensor(mask[:, t:t + 1])
            h, c = ops.where(keep, hn, h), ops.where(keep, cn, c)
            out.append(h)
        return ops.sum(ops.multiply(ops.stack(out, 1), wv)) + ops.sum(c ** 2)

    def loss_np(*a):
        out, _, c = lstm_forward_np(*a, mask)
        return np.sum(out * wv) + np.sum(c ** 2)

    value, grads = value_and_grad(loss, *args)
    worst, eps = abs(value - loss_np(*args)) / max(1.0, abs(value)), 1e-6
    for i, (a, g) in enumerate(zip(args, grads)):
        for idx in np.ndindex(a.shape):
            plus, minus = [x.copy() for x in args], [x.copy() for x in args]
            plus[i][idx] += eps; minus[i][idx] -= eps
            fd = (loss_np(*plus) - loss_np(*minus)) / (2 * eps)
            worst = max(worst, abs(fd - g[idx]) / max(1.0, abs(fd)))
    return worst


def test_lstm_cell_follows_its_equations(monkeypatch):
    assert lstm_cell_error() <= 1e-5
    monkeypatch.setattr(seqrec_nb.recurrent, "lstm_step", step_without_forget_gate)   # what LSTMCell.call looks up
    assert lstm_cell_error() > 1e-2


def test_lstm_gradient_matches_finite_differences_of_the_equations():
    # The finite differences are of the NumPy loss, float64 on every backend. Keras computes some ops in
    # float32 on JAX and PyTorch (ops.matmul on PyTorch), so there autodiff is good to float32 only.
    tol = 1e-7 if BACKEND == "tensorflow" else 5e-3
    assert lstm_gradient_error(lstm_step) < tol
    assert lstm_gradient_error(step_without_forget_gate) > 1e-2


def layer_norm_np(z, ln):
    gamma, beta = ln.get_weights()
    return gamma * (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-8) + beta


def paper_block_np(x, valid, blk):
    "x + SA(LN(x)) (causal, padded keys masked, padded queries given no weight, with W_O), then x + FFN(LN(x)); padding zeroed."
    wq, bq, wk, bk, wv, bv, wo, bo = blk.attention.get_weights()
    q_in = layer_norm_np(x, blk.norm_attention)
    heads = lambda w, b: np.einsum("btd,dhk->bhtk", q_in, w) + b[None, :, None, :]
    Q, K, V = heads(wq, bq), heads(wk, bk), heads(wv, bv)
    t = x.shape[1]
    allowed = np.tril(np.ones((t, t), bool))[None, None] & valid[:, None, None, :]
    s = np.where(allowed, Q @ K.transpose(0, 1, 3, 2) / np.sqrt(Q.shape[-1]), -1e9)
    w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)
    x = x + np.einsum("bhtk,hkd->btd", (w * valid[:, None, :, None]) @ V, wo) + bo
    y = layer_norm_np(x, blk.norm_ffn)
    (w1, b1), (w2, b2) = blk.ffn_in.get_weights(), blk.ffn_out.get_weights()
    return (x + np.maximum(y @ w1 + b1, 0) @ w2 + b2) * valid[..., None]


class ResidualFromNorm(TransformerBlock):
    "The bug: both residuals start from the normalised input."
    def call(self, x, valid=None, training=False):
        q = self.norm_attention(x)
        x = q + self.attention(q, valid=valid)
        y = self.norm_ffn(x)
        return (y + self.ffn_out(self.ffn_in(y))) * ops.expand_dims(ops.cast(valid, x.dtype), -1)


@pytest.mark.parametrize("block_cls, ok", [(TransformerBlock, True), (ResidualFromNorm, False)])
def test_paper_block_follows_its_equations(block_cls, ok):
    r = np.random.default_rng(2)
    blk = block_cls(num_heads=2); blk.build((None, None, 8))
    blk.set_weights([r.normal(size=w.shape).astype("float32") * 0.4 for w in blk.get_weights()])   # LN's too
    x = r.normal(size=(3, 6, 8)).astype("float32")
    valid = np.ones((3, 6), bool); valid[0, :2] = False; valid[1, :1] = False
    diff = np.abs(np_(blk(x, valid=valid)) - paper_block_np(x.astype("float64"), valid, blk)).max()
    assert (diff <= 1e-4) if ok else (diff > 0.1), diff
