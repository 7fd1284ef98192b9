"""What every estimator of the library shares beyond scikit-learn's ``BaseEstimator``.

The estimators derive from :class:`sklearn.base.BaseEstimator` (parameters, ``clone``,
``repr``, tags) and the fitting mixins (``TransformerMixin``, ``ClassifierMixin``); this
module holds the few pieces they add on top of it, and :data:`DEVIATIONS`, the one list of
the places where they knowingly differ from scikit-learn's conventions, with the reasons.
"""
from __future__ import annotations

from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import validate_data

__all__ = ["not_fitted", "record_names", "DEVIATIONS", "deviations"]


def not_fitted(estimator, what: str = "call fit first") -> NotFittedError:
    """The error of a method called on an unfitted ``estimator``.

    ``NotFittedError`` derives from both ``ValueError`` and ``AttributeError``, so code that
    caught the ``AttributeError`` the library raised before keeps working.
    """
    return NotFittedError(f"this {type(estimator).__name__} is not fitted yet: {what}")


def record_names(estimator, X, A, reset: bool) -> None:
    """``n_features_in_`` and ``feature_names_in_`` through scikit-learn's ``validate_data``.

    ``X`` is the caller's data (a DataFrame carries the names), ``A`` the array the library's
    converter made of it (its width is counted, so X is not converted a second time).
    ``reset``: record them (fit); otherwise check them (scikit-learn warns when the names
    differ from those seen at fit).
    """
    validate_data(estimator, X if hasattr(X, "columns") and getattr(X, "ndim", 2) == 2 else A,
                  skip_check_array=True, reset=reset)


_ONE_SAMPLE = ("inference methods take a single sample of shape (n_features,) as the one row "
               "(1, n_features), as the notebooks' per-sample loops call them; scikit-learn wants a "
               "ValueError there")

#: Deliberate departures from scikit-learn's estimator conventions, by estimator class and
#: scikit-learn check name, each with its reason. ``tests/test_sklearn.py`` hands these to
#: ``parametrize_with_checks`` as the expected failures, strictly (a deviation that no longer
#: fails its check fails the test), and nothing else may fail.
#:
#: Not deviations, since scikit-learn's tags express them: results come in the model's
#: ``dtype`` (float32 by default, also for float64 input; ``preserves_dtype``), training
#: refuses negative inputs (``positive_only``), DreamComp's dot-product matching scores poorly
#: on the checks' 2-feature blobs (``poor_score``), the TNN estimators take integer spike
#: times (``categorical``) and sequences of waves (``three_d_array``), WaveEncoder is
#: stateless (``requires_fit=False``) and returns uint8 spike times.
DEVIATIONS: dict[str, dict[str, str]] = {
    "SparseDream": {
        "check_fit2d_predict1d": _ONE_SAMPLE,
        "check_parameters_default_constructible": (
            "the default lateral is sdf.lateral.Box(2, 0.1), the notebooks' box spec: a frozen (immutable) "
            "value, so safe as a default, but not one of the plain types the check lists"),
    },
    "DreamComp": {"check_fit2d_predict1d": _ONE_SAMPLE},
    "KrotovHopfield": {"check_fit2d_predict1d": _ONE_SAMPLE},
}


def deviations(estimator) -> dict[str, str]:
    """The deviations declared for ``estimator``'s class (check name -> reason)."""
    return dict(DEVIATIONS.get(type(estimator).__name__, {}))
