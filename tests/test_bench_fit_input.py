"""`benchmarks.fit_input` at a tiny size, so that the benchmark cannot rot between full runs."""
import pytest

from benchmarks import fit_input as bench

pytestmark = pytest.mark.one_backend       # plumbing (processes, files, scripts): CI runs this file on TensorFlow only


def test_each_way_records_every_epoch():
    for way in bench.WAYS:
        r = bench.run_way(way, users=200, epochs=2)
        assert r["way"] == way and r["batches"] >= 1
        assert len(r["start_delay_s"]) == len(r["steps_s"]) == 2
        assert all(d >= 0 for d in r["start_delay_s"]) and all(s > 0 for s in r["steps_s"])


def test_table_leaves_out_the_first_epoch():
    rows = [{"way": "keras", "start_delay_s": [50.0, 0.5, 9.0, 3.0], "steps_s": [99.0, 2.0, 4.0, 3.0]},
            {"way": "seqrec_nb", "start_delay_s": [0.0, 0.01, 0.02, 0.01], "steps_s": [5.0, 2.0, 2.0, 2.0]}]
    keras_row, ours = bench.table(rows).splitlines()[2:]
    # epochs 2-4: delays 0.5, 9, 3 (median 3, max 9, two over 1 s); steps 2, 4, 3 (median 3)
    assert keras_row.split() == ["keras", "4", "3.00", "9.00", "2", "3.00"]
    assert ours.split() == ["seqrec_nb", "4", "0.01", "0.02", "0", "2.00"]


def test_refuses_a_single_epoch():
    with pytest.raises(SystemExit): bench.main(["--epochs", "1"])
    with pytest.raises(ValueError, match="way="): bench.run_way("tf.data", users=200, epochs=2)
