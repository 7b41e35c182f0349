"""What can go wrong when asking a data provider, in the words the router acts on.

They sit in the broker error taxonomy (``services.brokers.errors``): ``NotCovered`` is a
``HistoryNotCovered``, ``ProviderRateLimited`` a ``RateLimited``, ``GarbageAnswer`` a
``DataError``, so a broker's ``HistoryProvider`` and these providers read the same.
The router decides from the class: ``trips`` errors (a 429, a bot wall's 403, a spent quota)
open the provider's circuit at once; other failures count towards opening it; ``NoData``
and ``NotCovered`` are answers, not failures, and only send the request to the next
provider. Messages are shown to the trader and never carry a key.
"""

from __future__ import annotations

from services.broker import BrokerError
from services.brokers import errors as broker_errors


class ProviderError(BrokerError):
    """A provider could not serve a request."""

    trips = False  # open the circuit at once (instead of counting towards it)

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class ProviderUnavailable(ProviderError, broker_errors.BrokerUnavailable):
    """Down, unreachable, or behind a bot wall (NSE's 403)."""


class Blocked(ProviderUnavailable):
    """Refused outright (HTTP 403 from a bot wall): back off before asking again."""

    trips = True


class ProviderRateLimited(ProviderError, broker_errors.RateLimited):
    """HTTP 429 or the library's rate-limit error: back off."""

    trips = True

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        ProviderError.__init__(self, provider, message)
        self.retry_after = retry_after


class QuotaExhausted(ProviderError):
    """The day's (or minute's) request allowance is spent (Alpha Vantage's ``Note``)."""

    trips = True


class GarbageAnswer(ProviderError, broker_errors.DataError):
    """An answer that is not data: an HTML page, NaN prices, an unreadable file."""


class NoData(ProviderError):
    """The provider answered, with nothing for this range or symbol."""


class NotCovered(ProviderError, broker_errors.HistoryNotCovered):
    """Outside the provider's declared coverage: never asked."""


class CredentialsMissing(ProviderError, broker_errors.CredentialsMissing):
    """The provider needs an API key that is not in the credential store."""


class NoProvider(BrokerError):
    """No configured provider could serve the request; the message says why for each."""
