"""LM training sets under every workflow rule, run-directory names, fresh batches, chat data,
and the between-workflow statistics (no torch)."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from collapse.analysis.errors import CollapseError
from collapse.analysis.workflows import PRESETS, Workflow, parse_workflows
from collapse.lm import corpus, evidence, rundir, seeding
from collapse.lm.workflows import REAL, fresh_source, training_refs


def rule(text):
    return Workflow.parse(text)


def refs_for(text, t, n=6, seed=0):
    return training_refs(rule(text), t, n, [n] * (t - 1), seeding.numpy_rng(seed, t, seeding.SUBSAMPLE))


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_and_its_spelled_out_spec_give_the_same_training_sets(name):
    for t in range(1, 6):
        assert refs_for(name, t) == refs_for(PRESETS[name].spec, t)


def test_fresh_uses_only_the_newest_fresh_batch_and_the_latest_samples():
    for t in range(2, 6):
        refs = refs_for("fresh", t)
        assert {source for source, _ in refs} == {fresh_source(t), t - 1}
        assert len(refs) == 12


def test_window_keeps_the_k_newest_synthetic_batches():
    refs = refs_for("real=original,synthetic=window:2", 5)
    assert {source for source, _ in refs} == {REAL, 3, 4}
    refs = refs_for("real=none,synthetic=window:3", 2)
    assert {source for source, _ in refs} == {1}


def test_sizes_follow_the_rule_everywhere():
    for text in ["replace", "accumulate", "accumulate-subsample", "fresh", "real=original,synthetic=window:3",
                 "real=fresh,synthetic=all,size=8", "real=original,synthetic=all,size=10,real-fraction=0.5"]:
        r = rule(text)
        for t in range(1, 7):
            assert len(refs_for(text, t)) == r.training_size(6, t), (text, t)


def test_stratified_subsample_has_the_asked_real_fraction_without_replacement():
    text = "real=original,synthetic=all,size=10,real-fraction=0.3"
    for seed in range(30):
        refs = refs_for(text, 5, seed=seed)
        assert len(set(refs)) == 10
        assert sum(1 for s, _ in refs if s == REAL) == 3  # round(0.3 * 10)
        assert all(0 <= s < 5 for s, _ in refs)


def test_stratified_synthetic_part_is_uniform_over_the_synthetic_pool():
    # 4 synthetic batches of 6: each synthetic point kept with probability 7/24; chi-square
    # over the 24 points at the 0.1% level, and a biased negative control must fail it
    text, draws = "real=original,synthetic=all,size=10,real-fraction=0.3", 3000
    counts = {}
    rng = np.random.default_rng(7)
    for _ in range(draws):
        for ref in training_refs(rule(text), 5, 6, [6] * 4, rng):
            if ref[0] != REAL:
                counts[ref] = counts.get(ref, 0) + 1
    observed = np.array([counts.get((k, i), 0) for k in range(1, 5) for i in range(6)], dtype=float)
    expected = draws * 7 / 24

    def p_value(obs):
        return stats.chi2.sf(((obs - expected) ** 2 / expected).sum(), len(obs) - 1)

    assert p_value(observed) > 1e-3
    biased = observed.copy()
    biased[:6] *= 1.15  # the oldest batch over-kept
    biased[6:] -= (biased[:6].sum() - observed[:6].sum()) / 18
    assert p_value(biased) < 1e-3


def test_impossible_rules_are_refused_naming_the_key():
    with pytest.raises(CollapseError, match="size=50"):
        rule("real=none,synthetic=latest,size=50").check(6)
    with pytest.raises(CollapseError, match="real-fraction"):
        rule("real=original,synthetic=latest,size=10,real-fraction=0").check(6)  # 10 synthetic of 6


def test_directory_names_are_safe_and_unambiguous():
    specs = ["replace", "accumulate", "accumulate-subsample", "fresh",
             "real=original,synthetic=window:3", "real=original,synthetic=window:3,size=n",
             "real=original,synthetic=window:3,size=6", "real=fresh,synthetic=all,size=6,real-fraction=0.5",
             "real=fresh,synthetic=all,size=6,real-fraction=0.25", "real=none,synthetic=window:2"]
    labels = [w.label for w in parse_workflows(specs)]
    names = [rundir.workflow_dir(label) for label in labels]
    assert len(set(names)) == len(names)
    for name in names:
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_.+@"), name
        assert "/" not in name and name not in (".", "..")
    assert rundir.workflow_dir("accumulate") == "accumulate"


def test_fresh_batches_are_seeded_new_and_never_the_evaluation_set():
    splits = corpus.make_splits(600, 100, 50, split_seed=0)
    real = corpus.real_training_indices(splits, 40, seed=3)
    batches = [corpus.fresh_indices(splits, real, 40, seed=3, t=t) for t in (2, 3)]
    for batch in batches:
        assert len(set(batch)) == 40
        assert not set(batch) & set(real)
        assert not set(batch) & set(splits.evaluation)
        assert set(batch) <= set(splits.pool)
    assert batches[0] != batches[1]
    assert corpus.fresh_indices(splits, real, 40, seed=3, t=2) == batches[0]
    assert corpus.fresh_indices(splits, real, 40, seed=4, t=2) != batches[0]


def test_make_splits_keep_only_restricts_evaluation_and_pool():
    plain = corpus.make_splits(200, 50, 20, split_seed=1)
    kept = corpus.make_splits(200, 50, 20, split_seed=1, keep=lambda i: i % 2 == 0)
    assert kept.pretrain == plain.pretrain
    assert all(i % 2 == 0 for i in kept.evaluation + kept.pool)
    assert corpus.make_splits(200, 50, 20, split_seed=1, keep=lambda i: True) == plain


# -- chat (HelpSteer2-layout) data ------------------------------------------------------------

def helpsteer_records(k):
    return [{"prompt": f"Question {i}: what does line {i} mean?", "response": f"It means {i}.",
             "helpfulness": 3, "correctness": 3, "coherence": 4, "complexity": 1, "verbosity": 1}
            for i in range(k)]


def test_local_prompt_response_file_is_formatted_as_the_paper_does(tmp_path):
    path = tmp_path / "helpsteer2.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in helpsteer_records(5)), encoding="utf-8")
    c = corpus.load_corpus(str(path))
    assert c.chat
    assert c.documents[2] == "user: Question 2: what does line 2 mean?\nassistant: It means 2."
    assert "user: {prompt}" in c.provenance
    with pytest.raises(CollapseError, match="leave out --text-field"):
        corpus.load_corpus(str(path), "text")
    plain = corpus.load_corpus(str(path), "response")
    assert not plain.chat and plain.documents[0] == "It means 0."


def test_mixed_chat_and_plain_records_are_refused(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(helpsteer_records(1)[0]) + "\n" + json.dumps({"text": "plain"}) + "\n")
    with pytest.raises(CollapseError, match="line 2"):
        corpus.load_corpus(str(path))


# -- statistics ---------------------------------------------------------------------------------

def test_welch_matches_scipy_and_the_textbook_formulas():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 8), rng.normal(0.0, 2.0, 5)
    row = evidence.welch(a, b)
    assert row["welch_p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    va, vb = a.var(ddof=1) / 8, b.var(ddof=1) / 5
    df = (va + vb) ** 2 / (va ** 2 / 7 + vb ** 2 / 4)
    assert row["welch_df"] == pytest.approx(df, rel=1e-12)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert row["ci_low"] == pytest.approx(a.mean() - b.mean() - half, rel=1e-12)
    pooled = math.sqrt((7 * a.var(ddof=1) + 4 * b.var(ddof=1)) / 11)
    assert row["hedges_g"] == pytest.approx((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * 13 - 9)), rel=1e-12)


def test_welch_interval_covers_the_true_difference_at_its_level():
    # 2000 experiments with a true difference of 0.5: the 95% interval must cover it in
    # 95% +- 1.5% of them (binomial sd 0.49%, so a 3-sd band), and a 0.5 shift must be found
    rng = np.random.default_rng(1)
    covered = found = 0
    for _ in range(2000):
        a, b = rng.normal(0.5, 1.0, 8), rng.normal(0.0, 1.5, 8)
        row = evidence.welch(a, b)
        covered += row["ci_low"] <= 0.5 <= row["ci_high"]
        found += row["welch_p"] < 0.05
    assert abs(covered / 2000 - 0.95) < 0.015
    assert 0.05 < found / 2000 < 0.5  # some power, but a 0.5 shift at n = 8 is no sure thing


def test_pairwise_holm_and_paired():
    values = {"x": [1.0, 2.0, 3.0, 4.0], "y": [1.1, 2.11, 3.1, 4.11], "z": [9.0, 9.5, 9.1, 9.3]}
    rows = evidence.pairwise(values)
    assert [(r["a"], r["b"]) for r in rows] == [("x", "y"), ("x", "z"), ("y", "z")]
    xy = rows[0]
    # shifted by a nearly constant amount: the pairing sees it, Welch does not
    assert xy["welch_p"] > 0.5 and xy["paired_p"] < 0.01
    assert evidence.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert all(r["welch_p_holm"] >= r["welch_p"] for r in rows)
