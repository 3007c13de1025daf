"""Install advice for error messages, valid both by name (registry, wheelhouse) and from a ww checkout."""

from __future__ import annotations


def install_hint(package: str, extra: str | None = None) -> str:
    """``pip install <package>[extra]``, and the same from the checkout's ``packages/<package>`` folder."""
    by_name = f"'{package}[{extra}]'" if extra else package
    from_checkout = f"'./packages/{package}[{extra}]'" if extra else f"./packages/{package}"
    return f"pip install {by_name} (from a ww checkout: pip install {from_checkout})"
