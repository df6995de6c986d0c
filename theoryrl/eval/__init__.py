"""Evaluation: pass@k and coverage (passk), token metrics (lm_metrics), diversity, and the LM
evaluation path that samples, scores and reports pass@k (lm_eval)."""
from theoryrl.eval import diversity, lm_eval, lm_metrics, passk
from theoryrl.eval.diversity import distinct_answers, expected_distinct_in_k
from theoryrl.eval.lm_metrics import entropy_from_logits, mean_token_entropy, sequence_perplexity
from theoryrl.eval.passk import (HISTOGRAM_LABELS, accuracy_histogram, bootstrap_ci, coverage_containment, delta_se,
                                 pass_at_k, pass_at_k_curve, pass_at_k_per_problem, pass_at_k_with_ci, solvable_set)

__all__ = [
    "diversity", "lm_eval", "lm_metrics", "passk",
    "distinct_answers", "expected_distinct_in_k",
    "entropy_from_logits", "mean_token_entropy", "sequence_perplexity",
    "HISTOGRAM_LABELS", "accuracy_histogram", "bootstrap_ci", "coverage_containment", "delta_se",
    "pass_at_k", "pass_at_k_curve", "pass_at_k_per_problem", "pass_at_k_with_ci", "solvable_set",
]
