"""Order tags at a live broker, and finding an order by its tag after a lost answer.

Every order carries a tag of its own: when a place call gets no answer (a timeout, a cut
connection), the order may or may not exist at the broker, and the only way to know without
placing it twice is to look its tag up in the broker's order book. A tag is therefore never
reused within a session, and a failed lookup is ``OutcomeUnknown``, never a guess.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from services.broker import BrokerError, OrderRejected
from services.brokers.errors import OutcomeUnknown, SessionExpired
from services.brokers.ports import BrokerLimits
from services.domain import Order


def new_tag(prefix: str = "DT", max_length: int | None = None) -> str:
    """A fresh tag: ``prefix`` and 64 random bits in hex (letters and digits only)."""
    tag = f"{prefix}{secrets.token_hex(8)}"
    return tag if max_length is None else tag[:max_length]


class TagLedger:
    """The tags this session's orders used, checked against the broker's rules."""

    def __init__(self, limits: BrokerLimits, prefix: str = "DT") -> None:
        self.limits = limits
        self.prefix = prefix
        self._used: set[str] = set()

    def claim(self, tag: str | None) -> str:
        """``tag``, or a fresh one when ``None``; refused (``OrderRejected``, rule ``tag``)
        when the broker cannot take it or an earlier order of this session had it."""
        if tag is None:
            tag = new_tag(self.prefix, self.limits.tag_max_length)
            while tag in self._used:
                tag = new_tag(self.prefix, self.limits.tag_max_length)
        else:
            problem = self.limits.check_tag(tag)
            if problem is not None:
                raise OrderRejected(problem, rule="tag")
            if tag in self._used:
                raise OrderRejected(
                    f"order tag {tag!r} was already used: each order needs its own tag so "
                    "that it can be found again",
                    rule="tag",
                )
        self._used.add(tag)
        return tag


async def find_after_failure(
    broker: str,
    tag: str,
    cause: BrokerError,
    lookup: Callable[[], Awaitable[Order | None]],
    *,
    attempts: int,
    delay: float,
    sleep: Callable[[float], Awaitable[None]],
    fatal: tuple[type[BrokerError], ...] = (SessionExpired,),
) -> Order | None:
    """The order ``tag`` names, looked up after a place call that got no answer: ``None``
    when the book does not have it (it was not placed). A book that cannot be read after
    ``attempts`` tries (``delay`` longer each time) is ``OutcomeUnknown``; ``fatal``
    errors (a dead session) are raised at once."""
    last: BrokerError = cause
    for attempt in range(max(1, attempts)):
        if attempt:
            await sleep(delay * attempt)
        try:
            return await lookup()
        except fatal:
            raise
        except BrokerError as exc:
            last = exc
    raise OutcomeUnknown(
        f"place order: no answer from {broker} and the order book cannot be read ({last}); "
        f"check the order book for tag {tag} before placing again"
    )


__all__ = ["TagLedger", "find_after_failure", "new_tag"]
