"""The two clustering protocols, the validation split and the k-means baseline, on cases whose
answers are known by hand."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aae_np.eval import baselines, clustering, confusion_plot, report


# cluster 0 holds three 3s and one 5 among the training images: majority vote names it 3. The
# validation example that scores cluster 0 highest (q = 0.9) is a 5: the paper's rule names it 5.
TRAIN_C, TRAIN_Y = np.array([0, 0, 0, 0, 1, 1]), np.array([3, 3, 3, 5, 7, 7])
VAL_SCORES = np.array([[0.9, 0.1],      # a 5, the most cluster-0-like
                       [0.6, 0.4],      # a 3
                       [0.2, 0.8]])     # a 7
VAL_Y = np.array([5, 3, 7])
TEST_C, TEST_Y = np.array([0, 0, 0, 1]), np.array([5, 5, 3, 7])


def test_the_two_protocols_disagree_where_they_should():
    np.testing.assert_array_equal(clustering.cluster_mapping(TRAIN_C, TRAIN_Y, k=2), [3, 7])
    np.testing.assert_array_equal(clustering.validation_mapping(VAL_SCORES, VAL_Y), [5, 7])
    # test: cluster 0 holds 5, 5, 3; cluster 1 a 7
    assert clustering.clustering_error(TRAIN_C, TRAIN_Y, TEST_C, TEST_Y, k=2) == pytest.approx(2 / 4)
    numbers = clustering.protocols(TRAIN_C, TRAIN_Y, TEST_C, TEST_Y, 2, VAL_SCORES, VAL_Y)
    assert numbers["test_error"] == pytest.approx(0.5) and numbers["test_error_paper"] == pytest.approx(0.25)
    assert numbers["clusters_used"] == 2 and numbers["cluster_sizes"] == [3, 1]


def test_a_cluster_no_validation_example_falls_into_is_named_by_its_best_scorer():
    # no validation example has cluster 2 as its argmax, yet the 8 scores it highest (0.3)
    scores = np.array([[0.7, 0.1, 0.2], [0.1, 0.6, 0.3], [0.5, 0.4, 0.1]])
    labels = np.array([4, 8, 1])
    assert (scores.argmax(1) != 2).all()
    np.testing.assert_array_equal(clustering.validation_mapping(scores, labels), [4, 8, 8])
    test_c, test_y = np.array([2, 2, 0]), np.array([8, 1, 4])
    numbers = clustering.protocols(np.array([0, 1]), np.array([4, 8]), test_c, test_y, 3, scores, labels)
    assert numbers["test_error_paper"] == pytest.approx(1 / 3)      # the 1 in cluster 2 only
    assert numbers["test_error"] == pytest.approx(2 / 3)           # no training image in 2: both wrong
    assert numbers["clusters_used"] == 2 and numbers["cluster_sizes"] == [1, 0, 2]


def test_protocols_without_a_validation_split_and_bad_scores():
    numbers = clustering.protocols(TRAIN_C, TRAIN_Y, TEST_C, TEST_Y, 2)
    assert "test_error_paper" not in numbers and numbers["test_error"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="3 columns, expected one per cluster \\(2\\)"):
        clustering.protocols(TRAIN_C, TRAIN_Y, TEST_C, TEST_Y, 2, np.ones((3, 3)), VAL_Y)
    with pytest.raises(ValueError, match="labels has 2 entries, expected 3"):
        clustering.validation_mapping(VAL_SCORES, VAL_Y[:2])
    with pytest.raises(ValueError, match=r"test_clusters must lie in \[0, 2\)"):
        clustering.mapped_error(np.array([3, 7]), np.array([0, 2]), np.array([3, 7]))


def test_split_validation_holds_out_the_last_rows():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    x_fit, y_fit, x_val, y_val = clustering.split_validation(x, y, 3)
    np.testing.assert_array_equal(x_fit, x[:7])
    np.testing.assert_array_equal(x_val, x[7:])
    np.testing.assert_array_equal(y_fit, y[:7])
    np.testing.assert_array_equal(y_val, y[7:])
    assert clustering.split_validation(x, None, 3)[3] is None
    x_fit, _, x_val, y_val = clustering.split_validation(x, y, 0)
    assert x_fit is x and x_val is None and y_val is None
    with pytest.raises(ValueError, match=r"validation_images must lie in \[0, 10\)"):
        clustering.split_validation(x, y, 10)


def test_confusion_counts_and_the_figure_orders_rows_by_label(tmp_path, monkeypatch):
    counts = clustering.confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([1, 1, 0, 2, 2, 0]), 3, 3)
    np.testing.assert_array_equal(counts, [[0, 2, 0], [1, 0, 0], [1, 0, 2]])
    path = confusion_plot.class_confusion(np.array([0, 1, 1]), np.array([0, 1, 0]), tmp_path / "c.png", "t", 2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    seen = {}
    monkeypatch.setattr(confusion_plot, "confusion_figure",
                        lambda counts, names, path, title, row_axis: seen.update(counts=counts, names=names))
    # cluster 0 -> 2, cluster 1 -> 0, cluster 2 -> none: rows 1, 0, 2
    confusion_plot.cluster_confusion(np.array([0, 1, 1]), np.array([2, 0, 1]), np.array([2, 0, -1]),
                                     tmp_path / "d.png", "t", n_labels=3)
    assert seen["names"] == ["cluster 1 \u2192 0", "cluster 0 \u2192 2", "cluster 2 \u2192 ?"]
    np.testing.assert_array_equal(seen["counts"], [[1, 1, 0], [0, 0, 1], [0, 0, 0]])


def blobs(n_per: int, seed: int = 0):
    """Three tight, far-apart blobs in 6-D, labelled 4, 1, 9."""
    rng = np.random.default_rng(seed)
    centres, names = 10.0 * np.eye(3, 6), np.array([4, 1, 9])
    which = np.repeat(np.arange(3), n_per)
    return centres[which] + 0.1 * rng.standard_normal((len(which), 6)), names[which]


def test_kmeans_separates_separable_blobs_under_both_protocols():
    x, y = blobs(30)
    x_val, y_val = blobs(3, seed=1)
    x_test, y_test = blobs(10, seed=2)
    result = baselines.kmeans_baseline(x, y, x_test, y_test, 3, x_val, y_val)
    assert result["kmeans_error"] == 0.0 and result["kmeans_error_paper"] == 0.0
    assert result["kmeans_clusters_used"] == 3 and sorted(result["kmeans_cluster_sizes"]) == [10, 10, 10]
    shuffled = baselines.kmeans_baseline(x, y, x_test, y_test, 3, x_val, np.roll(y_val, 3))  # names 9, 4, 1
    assert shuffled["kmeans_error_paper"] == 1.0 and shuffled["kmeans_error"] == 0.0
    with pytest.raises(ValueError, match="k must lie in"):
        baselines.kmeans_baseline(x, y, x_test, y_test, 0)


def test_without_sklearn_the_baseline_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)        # import now raises ImportError
    x, y = blobs(5)
    with pytest.raises(baselines.BaselineUnavailable, match=r"pip install 'aae_np\[baselines\]'"):
        baselines.kmeans_baseline(x, y, x, y, 3)


def test_the_clustering_line_reads_both_protocols_and_k_means():
    summary = {"variant": "clustering", "test_error": 0.467, "test_error_paper": 0.44, "clusters_used": 14,
               "cluster_sizes": [1] * 16, "kmeans_error": 0.343, "kmeans_error_paper": 0.361,
               "kmeans_clusters_used": 16}
    assert report.clustering_line(summary) == ("clustering error: ours 46.7 % majority / 44.0 % paper protocol "
                                               "(14 of 16 clusters used); k-means on pixels 34.3 % majority / "
                                               "36.1 % paper protocol (16 used)")
    del summary["kmeans_error"], summary["test_error_paper"]
    summary["kmeans_unavailable"] = "needs scikit-learn"
    assert report.clustering_line(summary).endswith("/ no validation split (14 of 16 clusters used); "
                                                    "k-means: needs scikit-learn")
    assert report.clustering_line({"variant": "semi-supervised", "test_error": 0.1}) is None


def test_hungarian_accuracy_pairs_each_cluster_with_one_label():
    from aae_np.eval.clustering import hungarian_accuracy

    # cluster 0 holds two 0s and a 1, cluster 1 two 0s and two 1s: majority voting may name both
    # "0"; the one-to-one pairing gives cluster 1 the label 1 and cluster 2 the label 2
    clusters = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    labels = np.array([0, 0, 1, 0, 0, 1, 1, 2, 2])
    assert hungarian_accuracy(clusters, labels, 3) == pytest.approx((2 + 2 + 2) / 9)
    assert hungarian_accuracy(labels, labels, 3) == 1.0
    # more clusters than labels: an unpaired cluster's examples are all wrong
    assert hungarian_accuracy(np.array([0, 1, 2, 3]), np.array([0, 0, 1, 1]), 4) == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_hungarian_accuracy_is_the_best_of_every_one_to_one_pairing(k, n_labels, seed):
    from itertools import permutations

    from aae_np.eval.clustering import hungarian_accuracy

    rng = np.random.default_rng(seed)
    clusters, labels = rng.integers(0, k, 60), rng.integers(0, n_labels, 60)
    labels[:n_labels] = np.arange(n_labels)
    best = 0
    for chosen in permutations(range(max(k, n_labels)), k):     # cluster i -> label chosen[i] (>= n_labels: none)
        best = max(best, sum(int(np.sum((clusters == i) & (labels == c))) for i, c in enumerate(chosen)))
    assert hungarian_accuracy(clusters, labels, k, n_labels) == pytest.approx(best / 60)


def test_protocols_report_the_hungarian_accuracy():
    from aae_np.eval.clustering import protocols

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 50)
    out = protocols(labels, labels, (labels + 1) % 3, labels, 3)   # test clusters a relabelling of the labels
    assert out["hungarian_accuracy"] == 1.0 and out["test_error"] > 0.9
