"""Who prints and posts: one small interface (`base.Provider`), one class per kind.

`provider_for(row)` gives the class registered for a PostalProvider row's kind. Kinds register
with `register_provider`; the local print room is built in. Tests register their own.
"""

from __future__ import annotations

from mailroom.letters.providers.base import (
    PROVIDERS,
    Provider,
    ProviderError,
    SubmitResult,
    register_provider,
)


def provider_for(row) -> Provider:
    from mailroom.letters.providers import (
        lob,  # noqa: F401  (registers "lob")
        local,  # noqa: F401  (registers "local")
        pingen,  # noqa: F401  (registers "pingen")
    )

    try:
        cls = PROVIDERS[row.kind]
    except KeyError:
        raise ProviderError("UNKNOWN_PROVIDER",
                            f"Mailroom has no postal provider of the kind {row.kind!r}.",
                            action="Pick another provider in Letters › Postal providers.") from None
    return cls(row)


__all__ = ["PROVIDERS", "Provider", "ProviderError", "SubmitResult", "provider_for",
           "register_provider"]
