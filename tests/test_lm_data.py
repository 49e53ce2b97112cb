"""LM loop without torch: workflow data assembly, seeding, corpus and splits, metric formulas."""

import json
import math

import numpy as np
import pytest

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import ACCUMULATE, ACCUMULATE_SUBSAMPLE, REPLACE, WORKFLOWS
from collapse.lm import corpus, metrics, seeding, workflows

# -- workflow data assembly -----------------------------------------------------------------

@pytest.mark.parametrize("t", [1, 2, 3, 7])
def test_training_set_sizes(t):
    n = 10
    counts = [n] * (t - 1)
    rng = np.random.default_rng(0)
    assert len(workflows.training_refs(REPLACE, t, n, counts)) == n
    assert len(workflows.training_refs(ACCUMULATE, t, n, counts)) == t * n
    assert len(workflows.training_refs(ACCUMULATE_SUBSAMPLE, t, n, counts, rng)) == n


def test_iteration_one_is_the_real_data_for_every_workflow():
    for w in WORKFLOWS:
        refs = workflows.training_refs(w, 1, 5, [], np.random.default_rng(1))
        assert refs == [(0, i) for i in range(5)]


def test_replace_uses_only_the_previous_models_samples():
    refs = workflows.training_refs(REPLACE, 4, 6, [6, 6, 6])
    assert {source for source, _ in refs} == {3}
    assert sorted(i for _, i in refs) == list(range(6))


def test_accumulate_keeps_every_real_text_and_every_sample():
    n, t = 4, 5
    refs = workflows.training_refs(ACCUMULATE, t, n, [n] * (t - 1))
    assert len(set(refs)) == len(refs)
    assert {(0, i) for i in range(n)} <= set(refs)
    assert set(refs) == {(k, i) for k in range(t) for i in range(n)}


def _accumulated_pool(n_real, sample_counts):
    """The oracle: the real texts, then every sample of models 1..len(sample_counts)."""
    refs = [(workflows.REAL, i) for i in range(n_real)]
    for k, count in enumerate(sample_counts, start=1):
        refs.extend((k, i) for i in range(count))
    return refs


def test_subsample_is_without_replacement_from_the_accumulated_pool():
    n, t = 8, 6
    pool = set(_accumulated_pool(n, [n] * (t - 1)))
    for seed in range(50):
        refs = workflows.training_refs(ACCUMULATE_SUBSAMPLE, t, n, [n] * (t - 1),
                                       seeding.numpy_rng(seed, t, seeding.SUBSAMPLE))
        assert len(refs) == n and len(set(refs)) == n
        assert set(refs) <= pool


def test_subsample_is_uniform_over_the_pool():
    # Each of the t*n pool members is kept with probability 1/t.  Over R draws the
    # count of one member is Binomial(R, 1/t); a chi-square over all t*n members with
    # t*n - 1 degrees of freedom at the 0.1% level (false alarm 1e-3) must pass, and
    # the same check must reject a deliberately biased sampler (negative control).
    from scipy import stats

    n, t, draws = 5, 4, 4000
    pool = _accumulated_pool(n, [n] * (t - 1))
    index = {ref: k for k, ref in enumerate(pool)}
    rng = np.random.default_rng(123)
    counts = np.zeros(len(pool))
    for _ in range(draws):
        for ref in workflows.training_refs(ACCUMULATE_SUBSAMPLE, t, n, [n] * (t - 1), rng):
            counts[index[ref]] += 1
    expected = draws * n / len(pool)

    def p_value(observed):
        # without-replacement counts have variance R p (1-p) (1 - (n-1)/(N-1)) less than
        # binomial; the plain chi-square is then conservative, which is fine for a pass test
        return stats.chi2.sf(((observed - expected) ** 2 / expected).sum(), len(pool) - 1)

    assert p_value(counts) > 1e-3
    biased = counts.copy()
    biased[:n] *= 1.15  # real data kept 15% more often than uniform
    biased[n:] -= (biased[:n].sum() - counts[:n].sum()) / (len(pool) - n)
    assert p_value(biased) < 1e-3


def test_materialise_reads_real_and_sampled_texts():
    real = ["r0", "r1"]
    samples = [["a0", "a1"], ["b0", "b1"]]
    assert workflows.materialise([(0, 1), (2, 0), (1, 1)], real, samples) == ["r1", "b0", "a1"]


def test_training_refs_rejects_missing_history_and_bad_workflow():
    with pytest.raises(ValueError):
        workflows.training_refs(REPLACE, 3, 4, [4])
    with pytest.raises(ValueError):
        workflows.training_refs("collapse", 1, 4, [])


# -- seeding --------------------------------------------------------------------------------

def test_streams_depend_only_on_seed_iteration_and_purpose():
    a = seeding.numpy_rng(3, 5, seeding.SUBSAMPLE).integers(0, 2**32, 8)
    np.random.default_rng(999).random(100)  # unrelated process history
    b = seeding.numpy_rng(3, 5, seeding.SUBSAMPLE).integers(0, 2**32, 8)
    assert np.array_equal(a, b)
    assert seeding.torch_seed(3, 5, seeding.TRAIN) == seeding.torch_seed(3, 5, seeding.TRAIN)
    others = {seeding.torch_seed(3, 5, seeding.SAMPLE), seeding.torch_seed(3, 6, seeding.TRAIN),
              seeding.torch_seed(4, 5, seeding.TRAIN)}
    assert seeding.torch_seed(3, 5, seeding.TRAIN) not in others
    assert 0 <= seeding.torch_seed(3, 5, seeding.TRAIN) < 2**63


# -- corpus and splits ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def default():
    return corpus.default_corpus()


def test_default_corpus_is_large_real_text(default):
    assert default.n_chars >= 300_000
    assert len(default.documents) == len(set(default.documents))
    assert all(corpus.MIN_CHARS <= len(d) <= corpus.MAX_CHARS for d in default.documents)
    # English prose from the Python docs: common function words are everywhere
    words = " ".join(default.documents[:500]).lower().split()
    for word in ("the", "of", "is", "a"):
        assert words.count(word) > 100
    assert "PSF" in default.provenance


def test_default_corpus_is_deterministic(default):
    assert corpus.default_corpus().fingerprint == default.fingerprint


def test_splits_are_disjoint_seeded_and_cover_everything():
    s = corpus.make_splits(500, 200, 50, split_seed=0)
    parts = [set(s.pretrain), set(s.evaluation), set(s.pool)]
    assert [len(p) for p in parts] == [200, 50, 250]
    assert set.union(*parts) == set(range(500))
    assert sum(len(p) for p in parts) == 500
    assert corpus.make_splits(500, 200, 50, split_seed=0) == s
    assert corpus.make_splits(500, 200, 50, split_seed=1) != s


def test_real_training_set_comes_from_the_pool_without_replacement():
    s = corpus.make_splits(500, 200, 50, split_seed=0)
    real = corpus.real_training_indices(s, 100, seed=7)
    assert len(set(real)) == 100 and set(real) <= set(s.pool)
    assert corpus.real_training_indices(s, 100, seed=7) == real
    assert corpus.real_training_indices(s, 100, seed=8) != real


def test_check_sizes_names_the_parameter():
    with pytest.raises(CollapseError, match="--n"):
        corpus.check_sizes(100, 80, 16, 12, "x.txt")
    corpus.check_sizes(108, 80, 16, 12, "x.txt")


def test_local_txt_and_jsonl(tmp_path):
    txt = tmp_path / "docs.txt"
    txt.write_text("First document,\nwith two lines.\n\n\n  Second one.  \n\nThird.\n")
    c = corpus.load_corpus(str(txt))
    assert c.documents == ("First document,\nwith two lines.", "Second one.", "Third.")
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": f"text {i}", "id": i}) for i in range(4)) + "\n")
    assert corpus.load_corpus(str(jsonl), "body").documents == tuple(f"text {i}" for i in range(4))
    with pytest.raises(CollapseError, match="--text-field"):
        corpus.load_corpus(str(jsonl))  # default field "text" is absent
    with pytest.raises(CollapseError, match="--dataset"):
        corpus.load_corpus(str(tmp_path / "missing.txt"))


def test_hub_records_render_as_in_the_paper():
    record = {"prompt": "What is 2+2?", "response": "4.", "helpfulness": 4}
    assert corpus.render_record(record, None) == "user: What is 2+2?\nassistant: 4."
    assert corpus.render_record({"text": "plain"}, None) == "plain"
    assert corpus.render_record(record, "response") == "4."
    with pytest.raises(CollapseError, match="--text-field"):
        corpus.render_record({"body": "x"}, None)


# -- progress bars ----------------------------------------------------------------------------

def test_progress_bars_only_when_enabled(capsys):
    from collapse.lm import progress

    with progress.bar(total=3, desc="work", enabled=True) as bar:
        bar.update(3)
    assert "work" in capsys.readouterr().err
    with progress.bar(total=3, desc="quiet", enabled=False) as bar:
        bar.update(3)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert progress.wanted(quiet=True) is False


# -- metric formulas ------------------------------------------------------------------------

def test_distinct_bigram_ratio_by_hand():
    # "a b a b" has bigrams ab, ba, ab; "a b" adds ab: 2 distinct of 4
    assert metrics.distinct_bigram_ratio(["a b a b", "a b"]) == pytest.approx(2 / 4)
    assert metrics.distinct_bigram_ratio(["x y z"]) == 1.0
    assert math.isnan(metrics.distinct_bigram_ratio(["single", ""]))


def test_bits_per_byte_and_cross_entropy():
    # a uniform model over 256 byte values costs exactly 8 bits per byte
    n_bytes = 1000
    assert metrics.bits_per_byte(n_bytes * math.log(256), n_bytes) == pytest.approx(8.0, rel=1e-12)
    assert metrics.cross_entropy_per_token(30.0, 12) == 2.5
    assert metrics.utf8_bytes(["é", "ab"]) == 4
    assert metrics.mean_length(["ab", "abcd"]) == 3.0


def test_metric_names_are_unique_and_the_cross_entropy_is_the_projects_test_nll():
    from collapse.analysis.vocabulary import TEST_NLL

    assert len(set(metrics.LM_METRICS)) == 4
    assert metrics.LM_METRICS[0] == metrics.TEST_NLL == TEST_NLL == "test_nll"
    assert set(metrics.METRIC_LABELS) == set(metrics.LM_METRICS)
    # run directories written before the rename are read with the new name
    assert metrics.canonical_metrics({"heldout_ce_nats_per_token": 4.2}) == {"test_nll": 4.2}


#: Characters that str.splitlines() treats as line breaks but json.dumps(ensure_ascii=False)
#: leaves raw inside a string; a sampled text can contain any of them.
UNICODE_BREAKS = "a\u2028b\u2029c\x85d\x1ce\x1df\x1eg\x0bh\x0ci\rj"


def test_jsonl_records_with_unicode_line_separators_round_trip(tmp_path):
    from collapse.lm import rundir

    path = tmp_path / "samples.jsonl"
    records = [{"text": UNICODE_BREAKS, "k": 0}, {"text": "plain", "k": 1}]
    rundir.write_jsonl(path, records)
    assert rundir.read_jsonl(path) == records


def test_local_jsonl_documents_with_unicode_line_separators(tmp_path):
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"text": UNICODE_BREAKS + str(i)}, ensure_ascii=False) + "\n"
                             for i in range(3)), encoding="utf-8")
    documents = corpus.load_corpus(str(jsonl)).documents
    assert len(documents) == 3 and documents[0].startswith("a\u2028b")
