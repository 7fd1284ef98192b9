"""A metric for tests/test_sweep.py that the workers import (their PYTHONPATH names this folder)."""
import distributed


def distinct_data_objects(model, X):
    """How many different objects holding the whole data (300 rows) the runs on this worker
    have been handed so far; the configuration check's small subsets do not count."""
    if X.shape[0] != 300:
        return 0
    w = distributed.get_worker()
    seen = w.__dict__.setdefault("_sdf_test_seen", [])
    if not any(x is X for x in seen):
        seen.append(X)  # kept alive, so that a copy cannot reuse a freed object's identity
    return len(seen)
