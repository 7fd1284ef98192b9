"""What every estimator of the library shares beyond scikit-learn's ``BaseEstimator``.

The estimators derive from :class:`sklearn.base.BaseEstimator` (parameters, ``clone``,
``repr``, tags) and the fitting mixins (``TransformerMixin``, ``ClassifierMixin``); this module
holds the few pieces they add on top of it.
"""
from __future__ import annotations

from sklearn.exceptions import NotFittedError

__all__ = ["not_fitted"]


def not_fitted(estimator, what: str = "call fit first") -> NotFittedError:
    """The error of a method called on an unfitted ``estimator``.

    ``NotFittedError`` derives from both ``ValueError`` and ``AttributeError``, so code that
    caught the ``AttributeError`` the library raised before keeps working.
    """
    return NotFittedError(f"this {type(estimator).__name__} is not fitted yet: {what}")
