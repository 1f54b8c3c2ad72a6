"""The generated scanned documents: deterministic dirty / clean pairs of pages of text."""

import numpy as np
import pytest

from aecore.data import make_documents


@pytest.fixture(scope="module")
def pages():
    return make_documents(8, seed=0)


def test_shapes_dtypes_and_range(pages):
    dirty, clean = pages
    for x in (dirty, clean):
        assert x.shape == (8, 1, 258, 540) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
    per_page = clean.reshape(8, -1)
    assert np.all((per_page == 1.0).mean(axis=1) > 0.35)    # white paper, exactly 1
    assert np.all(per_page.min(axis=1) < 0.3)                # and dark ink on every page
    assert np.all((per_page < 0.5).mean(axis=1) < 0.3)       # text, not a black page


def test_other_sizes_and_dtypes():
    dirty, clean = make_documents(2, height=420, width=540, seed=1, dtype=np.float64)
    assert dirty.shape == clean.shape == (2, 1, 420, 540) and dirty.dtype == np.float64
    dirty, clean = make_documents(3, height=48, width=64, seed=1)
    assert clean.shape == (3, 1, 48, 64) and np.all(clean.reshape(3, -1).min(axis=1) < 0.5)
    dirty, clean = make_documents(0)
    assert dirty.shape == (0, 1, 258, 540)


def test_the_same_seed_gives_bitwise_the_same_pages(pages):
    dirty, clean = make_documents(8, seed=0)
    assert np.array_equal(dirty, pages[0]) and np.array_equal(clean, pages[1])
    # page k depends only on (seed, k): a shorter call gives the first pages of a longer one
    dirty3, clean3 = make_documents(3, seed=0)
    assert np.array_equal(dirty3, pages[0][:3]) and np.array_equal(clean3, pages[1][:3])
    other_dirty, other_clean = make_documents(3, seed=1)
    assert not np.array_equal(other_clean, clean3) and not np.array_equal(other_dirty, dirty3)


def test_pages_differ_from_each_other(pages):
    dirty, clean = pages
    for x in (dirty, clean):
        flat = x.reshape(8, -1)
        gaps = np.abs(flat[:, None] - flat[None]).mean(axis=2)
        assert np.all(gaps[~np.eye(8, dtype=bool)] > 0.02)
    # each page draws its own degradation: the dirt (dirty - clean) differs as much
    dirt = (dirty - clean).reshape(8, -1)
    assert np.all(np.std(dirt[1:] - dirt[0], axis=1) > 0.02)


def test_dirty_is_the_clean_page_degraded(pages):
    dirty, clean = pages
    for k in range(8):
        d, c = dirty[k, 0], clean[k, 0]
        assert np.abs(d - c).mean() > 0.05                   # the dirt is not subtle
        paper, ink = c == 1.0, c < 0.3
        assert np.median(d[paper]) < 0.97                    # the paper is greyer than white
        assert d[paper].std() > 0.01                         # and not flat
        assert d[ink].mean() < d[paper].mean() - 0.3         # the same text shows through
        assert np.corrcoef(d.ravel(), c.ravel())[0, 1] > 0.5


def _ink_bands(page):
    """(starts, heights) of the runs of rows that are dense with ink in a central strip of
    the page (narrow, so the page's slight skew does not blur the rows together)."""
    width = page.shape[1]
    ink = 1.0 - page[:, width // 2 - 50:width // 2 + 50]
    profile = ink.mean(axis=1)
    dense = np.concatenate([[0], (profile > 0.5 * profile.max()).astype(int), [0]])
    edges = np.flatnonzero(np.diff(dense))
    return edges[::2], edges[1::2] - edges[::2]


def test_the_clean_page_has_ink_in_rows_of_text(pages):
    _, clean = pages
    for page in clean[:, 0]:
        starts, heights = _ink_bands(page)
        assert len(starts) >= 5                              # lines of text
        pitch = np.median(np.diff(starts))
        regular = np.abs(np.diff(starts) / pitch - np.round(np.diff(starts) / pitch)) < 0.12
        assert regular.mean() > 0.7                          # at a fixed line pitch
        assert np.median(heights) < 0.6 * pitch              # with white gaps between them
        # margins: no ink along the edges of the page
        assert np.all(page[:4] == 1.0) and np.all(page[:, :8] == 1.0)
        assert np.all(page[:, -8:] == 1.0) and np.all(page[-4:] == 1.0)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"n": -1}, ValueError, "n: expected an integer >= 0"),
    ({"n": 2.5}, ValueError, "n: expected an integer"),
    ({"n": 1, "height": 10}, ValueError, "height: expected an integer >= 32"),
    ({"n": 1, "width": True}, ValueError, "width: expected an integer"),
    ({"n": 1, "seed": -3}, ValueError, "seed: expected an integer >= 0"),
    ({"n": 1, "dtype": np.int32}, TypeError, "dtype: expected a floating-point type"),
])
def test_bad_arguments_are_one_clear_error(kwargs, error, words):
    with pytest.raises(error, match=words):
        make_documents(**kwargs)
