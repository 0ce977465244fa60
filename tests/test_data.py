"Bad input to the data layer: every case raises an error whose message names what is wrong."
import numpy as np
import pandas as pd
import pytest

from seqrec_nb.data import (ItemIndex, NextItemBatches, leave_one_out, load_movielens, load_sasrec_txt,
                            pad_sequences, temporal_split, to_interactions)

pytestmark = pytest.mark.backend_free      # no Keras model runs here: CI runs this file on TensorFlow only


@pytest.fixture
def raw():
    return pd.DataFrame({"u": [1, 1, 2, 2, 2, 3], "i": ["a", "b", "a", "c", "b", "a"],
                         "t": ["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03", "2024-01-05", "2024-01-02"],
                         "qty": [1, 2, 3, 4, 5, 6]})


def build(df): return to_interactions(df, user="u", item="i", time="t")


def test_valid_log_is_sorted_and_keeps_extras(raw):
    log = build(raw)
    assert list(log.columns) == ["user_id", "item_id", "timestamp", "qty"]
    assert log.qty.tolist() == [1, 2, 3, 4, 5, 6]
    assert log.groupby("user_id").timestamp.apply(lambda t: t.is_monotonic_increasing).all()
    assert pd.api.types.is_datetime64_any_dtype(log.timestamp)


def test_missing_column_names_it(raw):
    with pytest.raises(ValueError, match=r"missing column 'i' \(the item column\).*\['u', 't', 'qty'\]"):
        build(raw.drop(columns="i"))


@pytest.mark.parametrize("bad", [np.nan, None, "", "   "])
def test_missing_or_empty_ids_name_column_and_show_rows(raw, bad):
    raw["i"] = raw["i"].astype(object)
    raw.loc[3, "i"] = bad
    with pytest.raises(ValueError, match=r"column 'i': 1 row\(s\) have a missing or empty id") as e:
        build(raw)
    assert "2024-01-03" in str(e.value)            # the offending row is shown


def test_shows_at_most_five_offending_rows():
    df = pd.DataFrame({"u": [None] * 8, "i": [f"item{k}" for k in range(8)], "t": range(8)})
    with pytest.raises(ValueError, match=r"column 'u': 8 row\(s\).*first 5") as e: build(df)
    shown = [f"item{k}" for k in range(8) if f"item{k}" in str(e.value)]
    assert shown == ["item0", "item1", "item2", "item3", "item4"]


def test_non_scalar_ids(raw):
    raw["u"] = raw["u"].astype(object)
    raw.at[0, "u"] = [1, 2]
    with pytest.raises(ValueError, match=r"column 'u': 1 row\(s\) hold a non-scalar id"): build(raw)


def test_unparseable_time(raw):
    raw.loc[2, "t"] = "not a date"
    with pytest.raises(ValueError, match=r"column 't': 1 row\(s\) have a time that does not parse") as e: build(raw)
    assert "not a date" in str(e.value)


def test_missing_time(raw):
    raw.loc[4, "t"] = None
    with pytest.raises(ValueError, match=r"column 't': 1 row\(s\) have a missing time"): build(raw)


def test_empty_log(raw):
    with pytest.raises(ValueError, match="interaction log is empty"): build(raw.iloc[:0])


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="expected a pandas DataFrame, got list"): to_interactions([[1, 2, 3]])


def test_duplicates_kept_unless_asked(raw):
    doubled = pd.concat([raw, raw.iloc[[0]]], ignore_index=True)
    assert len(build(doubled)) == 7
    assert len(to_interactions(doubled, "u", "i", "t", drop_duplicates=True)) == 6


def test_ties_keep_file_order():
    df = pd.DataFrame({"u": [1] * 4, "i": ["d", "b", "c", "a"], "t": ["2024-01-01"] * 4})
    assert build(df).item_id.tolist() == ["d", "b", "c", "a"]


def test_mixed_time_zones_name_the_column():
    df = pd.DataFrame({"u": [1, 1], "i": ["a", "b"], "t": ["2024-01-01 10:00+01:00", "2024-01-02 10:00-05:00"]})
    with pytest.raises(ValueError, match=r"column 't': times do not parse as one datetime column"): build(df)


def test_existing_target_column_is_not_silently_overwritten(raw):
    with pytest.raises(ValueError, match="column 'user_id' would be overwritten by 'u'"):
        build(raw.assign(user_id=0))


def test_numeric_times_pass_through(raw):
    log = build(raw.assign(t=[5, 1, 3, 2, 9, 4]))
    assert log[log.user_id == 1].item_id.tolist() == ["b", "a"]


def test_item_index_unknown_and_padding():
    idx = ItemIndex(["x", "y"])
    with pytest.raises(KeyError, match=r"1 unknown item id\(s\), e.g. \['q'\]"): idx.encode(["x", "q"])
    with pytest.raises(KeyError, match="padding or out of range"): idx.decode([0, 1])
    with pytest.raises(KeyError, match="out of range 1..2"): idx.decode([3])
    with pytest.raises(ValueError, match="unknown='ignore'"): idx.encode(["x"], unknown="ignore")
    assert idx.decode(idx.encode(["y", "x"])).tolist() == ["y", "x"]


def test_splits_sort_an_unsorted_log():
    log = pd.DataFrame({"user_id": [1, 1, 1], "item_id": ["c", "a", "b"], "timestamp": [3, 1, 2]})
    s = leave_one_out(log)
    assert s.index.decode(s.test.item).tolist() == ["c"] and s.index.decode(s.valid.item).tolist() == ["b"]


def test_temporal_cutoff_types():
    log = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": ["a", "b", "a", "c"],
                        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-01", "2024-01-04"], utc=True)})
    s = temporal_split(log, "2024-01-02")               # a naive cut-off is read in the log's time zone
    assert s.index.decode(s.test.item).tolist() == ["b", "c"]
    with pytest.raises(ValueError, match="cutoff 'soon' is not a time"): temporal_split(log, "soon")
    numeric = log.assign(timestamp=[1, 3, 1, 4])
    with pytest.raises(ValueError, match="timestamps are numbers, so the cutoff must be one too"):
        temporal_split(numeric, "2024-01-02")
    assert len(temporal_split(numeric, 2).test) == 2


def test_split_errors(raw):
    log = build(raw)
    with pytest.raises(ValueError, match="min_len=2"): leave_one_out(log, min_len=2)
    with pytest.raises(ValueError, match="no events on one side"): temporal_split(log, "1999-01-01")
    with pytest.raises(ValueError, match="not an interaction log"): leave_one_out(raw)
    with pytest.raises(ValueError, match="on='train'"): leave_one_out(log).histories("train")


def test_leave_one_out_never_uses_the_future(raw):
    s = leave_one_out(build(raw))
    assert s.test.user_id.tolist() == [2] and s.index.decode(s.test.item).tolist() == ["b"]
    assert [s.index.decode(h).tolist() for h in s.histories("test")] == [["a", "c"]]
    assert len(s.train) == 4                    # users 1 and 3 (too short) and user 2's first event


def test_padding_and_batches_errors():
    with pytest.raises(ValueError, match="maxlen=0"): pad_sequences([[1]], 0)
    with pytest.raises(ValueError, match="nothing to predict"): NextItemBatches([[1], [2]], n_items=2)
    with pytest.raises(ValueError, match="negatives='hard'"): NextItemBatches([[1, 2]], n_items=2, negatives="hard")
    b = NextItemBatches([[1, 2, 3]], n_items=3, batch_size=4)
    with pytest.raises(IndexError, match="batch 1 out of range"): b[1]
    with pytest.raises(ValueError, match=r"item ids must lie in 1..n_items=3; found 1..5"): NextItemBatches([[1, 5]], n_items=3)
    with pytest.raises(ValueError, match="negatives need at least 2 items"): NextItemBatches([[1, 1]], 1, negatives="uniform")


def test_negatives_when_one_item_has_all_the_popularity():
    b = NextItemBatches([[2, 2, 2], [2, 2]], n_items=3, negatives="popularity", n_negatives=5)
    x, y = b[0]
    assert (x["negatives"][y > 0] != 2).all()     # never the target, even though only item 2 is popular


def test_bad_files(tmp_path):
    bad = tmp_path / "x.dat"
    bad.write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match="not a MovieLens ratings file"): load_movielens(bad)
    txt = tmp_path / "s.txt"
    txt.write_text("1 2\n1 x\n")
    with pytest.raises(ValueError, match="expected two integers per line"): load_sasrec_txt(txt)
    txt.write_text("1 2 3\n1 4 5\n")
    with pytest.raises(ValueError, match="found 3 fields"): load_sasrec_txt(txt)


@pytest.mark.parametrize("negatives", [None, "uniform"])
def test_fill_last_pads_the_short_batch_with_empty_rows(negatives):
    """`fill_last=True`: every padded batch has the shape (batch_size, maxlen); the last one's real rows are those
    it has without filling, and the added rows are all padding, with no target (so they add nothing to a loss)."""
    seqs = [[1, 2, 3], [2, 3, 4, 5], [5, 1], [3, 3, 2], [4, 1, 2, 3, 5]]
    kw = dict(n_items=5, maxlen=4, batch_size=2, negatives=negatives, seed=3)
    plain, filled = NextItemBatches(seqs, **kw), NextItemBatches(seqs, fill_last=True, **kw)
    assert len(plain) == len(filled) == 3
    y_of = lambda b, i: b[i][1]
    x_of = lambda b, i: b[i][0]["history"] if negatives else b[i][0]
    assert {y_of(filled, i).shape for i in range(3)} == {(2, 4)} and y_of(plain, 2).shape == (1, 4)
    for i in range(3):
        n = len(y_of(plain, i))
        np.testing.assert_array_equal(y_of(filled, i)[:n], y_of(plain, i))
        np.testing.assert_array_equal(x_of(filled, i)[:n], x_of(plain, i))
        assert not y_of(filled, i)[n:].any() and not x_of(filled, i)[n:].any()
    if negatives: assert filled[2][0]["negatives"].shape == (2, 4, 1)
    assert len(NextItemBatches(seqs, fill_last=True, drop_remainder=True, **kw)) == 2
    assert {NextItemBatches(seqs, fill_last=True, bucket_by_length=True, **kw)[i][1].shape[0] for i in range(3)} == {2, 1}
