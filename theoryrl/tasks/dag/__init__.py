"""DAG-lite arithmetic (Zhang, Neubig and Yue, arXiv 2512.07783; spec `dag_arithmetic.md` §11):
tokens (the fixed vocabulary), generate (problems and gold solutions), mix (checked mixture knobs),
verify (the token-level parser, process verification and rewards)."""
