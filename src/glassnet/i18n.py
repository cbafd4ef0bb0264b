"""What a person reads, in English or in Traditional Chinese (zh-TW), from gettext catalogs.

The messages are written in English in the code, wrapped in ``_()`` (or marked with ``N_()``
where they are translated later, as the page's own words are). The Traditional Chinese catalog,
``locale/zh_TW/LC_MESSAGES/glassnet.po``, follows the deck's style: Chinese sentences that keep
the English term beside each technical word, as the deck writes 「梯度下降 Gradient Descent」.

The language is the one asked for (``--lang``, the page's switch), else the environment's
(``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, as gettext reads them), else English.
Catalogs are compiled with Babel: ``pybabel extract -F babel.cfg -o glassnet.pot src`` then
``pybabel update``/``pybabel compile`` (README, "Languages"); a test checks that every message
has its translation and that the compiled catalog is the source's.

>>> set_language("zh-TW")
'zh_TW'
>>> _("Gradient Descent")
'梯度下降 Gradient Descent'
>>> set_language("en")
'en'
"""

from __future__ import annotations

import gettext as _gettext
import os
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

__all__ = [
    "LANGUAGES",
    "N_",
    "_",
    "language",
    "messages",
    "normalize",
    "set_language",
    "speaking",
]

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "glassnet"
LANGUAGES = {"en": "English", "zh_TW": "繁體中文"}  # code -> its own name
_ALIASES = {"zh_tw": "zh_TW", "zh_hant": "zh_TW", "zh_hant_tw": "zh_TW", "zh_hk": "zh_TW"}

_current: str | None = None  # None: read the environment when first needed
# A language for one thread or task only (a request to ``glassnet serve``), over _current.
_speaking: ContextVar[str | None] = ContextVar("glassnet_speaking", default=None)


def normalize(name: str) -> str | None:
    """A language name as a catalog code: 'zh-TW', 'zh_TW.UTF-8', 'zh-Hant' -> 'zh_TW';
    'en', 'en_US.UTF-8', 'C', 'POSIX' -> 'en'; None for a language glassnet does not speak."""
    base = name.split(".")[0].split("@")[0].replace("-", "_").lower()
    if base in ("c", "posix") or base == "en" or base.startswith("en_"):
        return "en"
    return _ALIASES.get(base)


def _from_environment() -> str:
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if not value:
            continue
        for name in value.split(":"):  # LANGUAGE may list several, best first
            code = normalize(name)
            if code is not None:
                return code
        return "en"  # the first variable set decides, as gettext does
    return "en"


def set_language(name: str | None = None) -> str:
    """Speak ``name`` from now on ('en', 'zh-TW', …); None: the environment's. Returns the
    catalog code chosen."""
    global _current
    if name is None:
        _current = _from_environment()
        return _current
    code = normalize(name)
    if code is None:
        raise ValueError(
            f"Received language {name!r}. glassnet speaks "
            + ", ".join(f"{code.replace('_', '-')} ({own})" for code, own in LANGUAGES.items())
            + "."
        )
    _current = code
    return code


def language() -> str:
    """The catalog code in use: 'en' or 'zh_TW'."""
    said = _speaking.get()
    if said is not None:
        return said
    return _current if _current is not None else set_language()


@contextmanager
def speaking(code: str):
    """Speak ``code`` (a catalog code from ``normalize``) inside the block, in this thread or
    task only; the process's language stays as it was for every other.

    >>> with speaking("zh_TW"):
    ...     _("Gradient Descent")
    '梯度下降 Gradient Descent'
    >>> _("Gradient Descent")
    'Gradient Descent'
    """
    token = _speaking.set(code)
    try:
        yield
    finally:
        _speaking.reset(token)


@cache
def _translation(code: str) -> _gettext.NullTranslations:
    if code == "en":
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[code])


def _(message: str) -> str:
    """``message`` in the language in use."""
    return _translation(language()).gettext(message)


def N_(message: str) -> str:
    """Marks ``message`` for the catalog without translating it now."""
    return message


def messages(code: str, ids) -> dict[str, str]:
    """Each of ``ids`` translated into ``code`` (the page asks for its words this way)."""
    translation = _translation(code)
    return {m: translation.gettext(m) for m in ids}
