"""Exact theory: pure functions, no randomness, no imports of ``simulate`` or ``lm``.

The vocabulary (:mod:`~collapse.analysis.vocabulary`), the one error type
(:mod:`~collapse.analysis.errors`), the one validator (:mod:`~collapse.analysis.checks`),
workflow rules (:mod:`~collapse.analysis.workflows`), problems
(:mod:`~collapse.analysis.problems`), and the exact expectations of every setting.
"""
