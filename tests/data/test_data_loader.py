"""DataLoader: coverage, reshuffling, exact resume; train/val splits."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aecore.data import DataLoader, Dataset, split_dataset, train_val_split


def _epoch_indices(loader):
    return [xb[:, 0].copy() for xb, _ in loader]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 50), bs=st.integers(1, 20), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_each_index_once_per_epoch(n, bs, shuffle, drop_last, seed):
    if drop_last and bs > n:
        with pytest.raises(ValueError, match="leaves no batch"):
            DataLoader(np.arange(n)[:, None], batch_size=bs, drop_last=True)
        return
    x = np.arange(n)[:, None]
    y = np.arange(n) * 10
    loader = DataLoader(x, y, batch_size=bs, shuffle=shuffle, seed=seed, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader)
    seen = np.concatenate([xb[:, 0] for xb, _ in batches])
    for xb, yb in batches:
        np.testing.assert_array_equal(yb, xb[:, 0] * 10)
        assert len(xb) == bs or (not drop_last and xb is batches[-1][0])
    if drop_last:
        assert len(seen) == (n // bs) * bs and len(set(seen.tolist())) == len(seen)
    else:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_reshuffles_every_epoch_and_is_seeded():
    x = np.arange(100)[:, None]
    a = DataLoader(x, batch_size=10, seed=1)
    e1, e2 = np.concatenate(_epoch_indices(a)), np.concatenate(_epoch_indices(a))
    assert not np.array_equal(e1, e2)
    b = DataLoader(x, batch_size=10, seed=1)
    np.testing.assert_array_equal(np.concatenate(_epoch_indices(b)), e1)
    assert a.epoch == 2


@pytest.mark.parametrize("stop_after", [0, 1, 3, 7])
def test_state_dict_resume_gives_identical_batches(stop_after):
    x = np.arange(70)[:, None]
    ref = DataLoader(x, batch_size=10, seed=5)
    ref_batches = [b for _ in range(3) for b in _epoch_indices(ref)]

    run = DataLoader(x, batch_size=10, seed=5)
    got = []
    it = iter(run)
    for _ in range(stop_after):  # consume part of the first epoch (7 batches = all of it)
        got.append(next(it)[0][:, 0].copy())
    state = json.loads(json.dumps(run.state_dict()))  # must survive JSON

    resumed = DataLoader(x, batch_size=10, seed=999)  # the seed is replaced by the state
    resumed.load_state_dict(state)
    while len(got) < len(ref_batches):
        got += _epoch_indices(resumed)
    assert len(got) == len(ref_batches)
    for g, r in zip(got, ref_batches):
        np.testing.assert_array_equal(g, r)


def test_state_dict_checks_configuration():
    a = DataLoader(np.zeros((10, 1)), batch_size=3)
    b = DataLoader(np.zeros((10, 1)), batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        b.load_state_dict(a.state_dict())


def test_drop_last_lengths():
    x = np.zeros((10, 2))
    assert len(DataLoader(x, batch_size=3)) == 4
    assert len(DataLoader(x, batch_size=3, drop_last=True)) == 3
    assert [len(b) for b, _ in DataLoader(x, batch_size=3, drop_last=True)] == [3, 3, 3]
    assert [len(b) for b, _ in DataLoader(x, batch_size=3, shuffle=False)] == [3, 3, 3, 1]


def test_argument_validation():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros((4, 1)), batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros((4, 1)), batch_size=2.5)
    with pytest.raises(ValueError, match="labels has 3 entries but images has 4"):
        DataLoader(np.zeros((4, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        DataLoader(np.zeros((0, 1)))
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(10, 1.0)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(10, -0.1)
    with pytest.raises(ValueError, match="n must be"):
        train_val_split(-1)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 200), frac=st.floats(0, 0.99), seed=st.integers(0, 1000))
def test_split_deterministic_disjoint_covering(n, frac, seed):
    tr, va = train_val_split(n, frac, seed)
    tr2, va2 = train_val_split(n, frac, seed)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)
    assert len(va) == int(np.floor(n * frac))
    assert not set(tr.tolist()) & set(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(n))
    assert tr.dtype == np.int64


def test_split_dataset():
    ds = Dataset(np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1), np.arange(20), "toy", "-")
    tr, va = split_dataset(ds, 0.25, seed=3)
    assert len(tr) == 15 and len(va) == 5
    np.testing.assert_array_equal(tr.images[:, 0, 0, 0], tr.labels)
    np.testing.assert_array_equal(va.images[:, 0, 0, 0], va.labels)
    tr2, _ = split_dataset(ds, 0.25, seed=4)
    assert not np.array_equal(tr.labels, tr2.labels)


def test_loader_accepts_a_dataset():
    ds = Dataset(np.zeros((5, 1, 2, 2), np.float32), np.arange(5), "toy", "-")
    batches = list(DataLoader(ds, batch_size=2, shuffle=False))
    assert [b[1].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="not both"):
        DataLoader(ds, np.arange(5))
