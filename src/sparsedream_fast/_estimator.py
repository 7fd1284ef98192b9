"""scikit-learn's estimator conventions without depending on scikit-learn.

The constructor stores its arguments unchanged; ``get_params``/``set_params`` read and
write them, so ``sklearn.base.clone`` and ``Pipeline`` work with our models.
"""
from __future__ import annotations

import inspect

__all__ = ["ParamsMixin"]


class ParamsMixin:
    """``get_params``, ``set_params`` and a readable ``repr`` from the constructor's signature."""

    @classmethod
    def _param_names(cls) -> list:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor parameters as a dict (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters by name; returns self. Unknown names raise ValueError."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name in self._param_names():
            value = getattr(self, name)
            default = sig.parameters[name].default
            try:
                same = value is default or bool(value == default)
            except Exception:
                same = False
            if not same:
                r = repr(value)
                parts.append(f"{name}={r if len(r) < 60 else r[:57] + '...'}")
        return f"{type(self).__name__}({', '.join(parts)})"
