"""Evaluation, pure: tasks (contracts, scoring functions, naive baselines), French CSV, energy factors.

Nothing here touches a database, a runner, MLflow or the service: the service
(:mod:`bibia.evaluations`) reads benchmarks, runs models in sandboxes and calls
these functions on the predictions it got back. Every function is tested on
hand-computed examples (``tests/evaluation``).
"""
