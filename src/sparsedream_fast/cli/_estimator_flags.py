"""Command-line flags generated from the estimators' constructors and numpydoc docstrings.

Each constructor parameter of the estimators ``sparsedream train`` can build becomes a flag
(``lr`` -> ``--lr``): its type and choices come from the docstring's ``Parameters`` entry
(``int``, ``float or None``, ``bool``, ``{"a", "b"}``), else from the default's type; its help
from the entry's first sentence; its default from the signature, read when the command runs
(so a changed default in a constructor changes the command with it). A parameter that
several estimators share (``lr``, ``k``, ``batch_size``, ...) is one flag whose default depends
on ``--model``. Parameters with a shape of their own (``grid``, ``init``, ``lateral``) and
those the command fills in itself (``n_inputs`` from the data, ``warm_start`` by
``--resume``) are written by hand in ``train.py``.
"""
from __future__ import annotations

import argparse
import inspect
import math
import re
from dataclasses import dataclass, field

__all__ = ["ParamSpec", "docstring_parameters", "estimator_params", "add_estimator_flags", "model_defaults"]

_NONE_WORDS = ("none", "null", "off")


@dataclass
class ParamSpec:
    """One constructor parameter as a flag."""

    name: str
    kind: str                      # "int", "float", "bool", "choice" or "str"
    optional: bool = False         # None is a value ("none" on the command line)
    choices: tuple = ()
    help: str = ""
    defaults: dict = field(default_factory=dict)   # model name -> default

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def docstring_parameters(cls) -> dict:
    """``{name: (type text, description)}`` from the ``Parameters`` section of ``cls``'s
    numpydoc docstring (``a, b : type`` gives both names)."""
    doc = inspect.getdoc(cls) or ""
    m = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, flags=re.S | re.M)
    if not m:
        return {}
    out, names, typ, desc = {}, None, "", []

    def flush():
        if names:
            for n in names:
                out[n] = (typ, " ".join(desc).strip())

    for line in m.group(1).splitlines():
        if line and not line[0].isspace():
            flush()
            head, _, typ = line.partition(" : ")
            names, desc = [n.strip() for n in head.split(",") if n.strip()], []
            typ = typ.strip()
        elif line.strip():
            desc.append(line.strip())
    flush()
    return out


def _first_sentence(text: str) -> str:
    text = re.sub(r"``([^`]*)``", r"\1", text)
    m = re.match(r"(.+?[.;])(\s|$)", text)
    s = (m.group(1) if m else text).rstrip(".;")
    return s.replace("%", "%%")


def _kind(typ: str, default):
    """(kind, optional, choices) from a docstring type, else from the default's type."""
    t = typ.strip()
    optional = bool(re.search(r"\bor None\b", t)) or default is None
    m = re.match(r"\{(.*)\}", t)
    if m:
        choices = tuple(c.strip().strip("\"'") for c in m.group(1).split(","))
        return "choice", optional, choices
    base = re.sub(r"\s*or None\b", "", t).strip()
    if base in ("int", "float", "bool", "str"):
        return base, optional, ()
    if isinstance(default, bool):
        return "bool", optional, ()
    if isinstance(default, int):
        return "int", optional, ()
    if isinstance(default, float):
        return "float", optional, ()
    if isinstance(default, str):
        return "str", optional, ()
    return None, optional, ()


def estimator_params(models: dict, skip=()) -> dict:
    """``{name: ParamSpec}`` over the constructors of ``models`` ({model name: class}), in
    signature order; parameters in ``skip`` are left out. A docstring entry that only says
    "as in X" borrows another model's entry."""
    docs = {m: docstring_parameters(cls) for m, cls in models.items()}
    specs: dict = {}
    for model, cls in models.items():
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name == "self" or p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            typ, desc = docs[model].get(p.name, ("", ""))
            if not typ or typ.lower().startswith("as in"):
                typ, desc = next((d[p.name] for d in docs.values() if p.name in d
                                  and not d[p.name][0].lower().startswith("as in")), (typ, desc))
            kind, optional, choices = _kind(typ, p.default)
            if kind is None:
                continue
            spec = specs.get(p.name)
            if spec is None:
                spec = specs[p.name] = ParamSpec(p.name, kind, optional, choices,
                                                 _first_sentence(desc) if desc else p.name.replace("_", " "))
            else:
                spec.optional = spec.optional or optional
                spec.choices = tuple(dict.fromkeys(spec.choices + choices))
            spec.defaults[model] = p.default
    return specs


def model_defaults(cls, specs: dict, model: str, overrides=None) -> dict:
    """The defaults of ``model``'s generated flags, read from its signature now."""
    sig = inspect.signature(cls.__init__).parameters
    out = {name: sig[name].default for name, s in specs.items() if model in s.defaults and name in sig}
    out.update({k: v for k, v in (overrides or {}).items() if k in out})
    return out


def _none_or(conv, name):
    def parse(text):
        if text.strip().lower() in _NONE_WORDS:
            return None
        return conv(text)
    parse.__name__ = name
    return parse


def _float(text):
    v = float(text)
    if math.isnan(v):
        raise ValueError("nan")
    return v


def _shown(v) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return "none" if v is None else str(v)


def add_estimator_flags(group, specs: dict, labels: dict, overrides=None) -> None:
    """Add one flag per spec to the argparse ``group``; values the user does not give stay
    out of the namespace (``argparse.SUPPRESS``). ``labels``: model name -> class name,
    for the help; ``overrides``: defaults the command sets instead of the constructor's."""
    overrides = overrides or {}
    for spec in specs.values():
        kw = {"default": argparse.SUPPRESS}
        if spec.kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif spec.kind == "choice":
            kw["choices"] = spec.choices
        else:
            conv = {"int": int, "float": _float, "str": str}[spec.kind]
            kw["type"] = _none_or(conv, spec.kind) if spec.optional else conv
            if spec.optional:
                kw["metavar"] = spec.kind.upper() + "|none"
        defaults = {m: overrides.get(spec.name, d) for m, d in spec.defaults.items()}
        if len(set(map(repr, defaults.values()))) == 1:
            shown = _shown(next(iter(defaults.values())))
        else:
            shown = ", ".join(f"{_shown(d)} ({labels[m]})" for m, d in defaults.items())
        owners = "" if len(defaults) == len(labels) else " [" + ", ".join(labels[m] for m in defaults) + "]"
        group.add_argument(spec.flag, **kw, help=f"{spec.help}{owners} (default: {shown})")
