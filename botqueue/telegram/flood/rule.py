"""The grant rule, written once: pure functions over a token's window state at a store's now.

**Slots.** At most ``limit`` calls in any ``period`` *as the Bot API server sees them*. A slot is
busy from its grant until its call completes, then cools down for one period, and only then is
it granted again. Stamping slots at send time instead lets jitter squeeze N+1 calls into the
server's window, and each 429 then pauses every handler. The server checked the call at some t
between its send s and completion c; cooling down from c makes the slot's next call reach the
server a period after t however the network or either event loop delays calls, but holds each
slot for a whole round trip on top of its period.

**Credit.** Write t = c - a, where a is the answer leg (the server's work after its check, the
way back, the releasing worker's loop), and let the slot's next call, granted at g to any
worker v, be checked at g + q', q' its request leg (v's loop, the way out, the server's work
before its check). Cooling down from c - k leaves the server a gap of at least P - k + a + q',
so the window holds while k <= a + q'. Each worker measures the fastest round trip R_w it was
answered in over the last minute (nothing until max(16, 2 x limit) answers over two periods:
a slow first call, with TCP and TLS handshakes, is not the path's) and publishes it in the
state; the credit is ``CREDIT_FRACTION`` (0.85) of the least R over the live workers, less one
clock tick, at most a tenth of the period, and 0 while any live worker has published none.

- One host (the memory store; every worker of an SQLite file): one path with floors Q and A
  on its legs. If its fastest round trip was at most 15% jitter, queueing or processing above
  its least (R <= (Q + A) / 0.85), then k <= 0.85 R <= Q + A <= a + q'. Only the sum counts:
  all of a round trip on the way out or all on the way back alike; jitter only lengthens legs
  and a minimum ignores slow calls. TCP's BBR takes a path's least round trip the same way.
- Several hosts (Redis): the next call may be another host's, so a + q' mixes two paths. The
  credit stays safe while every host's legs each take at least 0.425 of the fleet's least
  round trip (A_w, Q_v >= 0.85 R_min / 2), true of ordinary paths, whose two legs are alike
  and no shorter than the fleet's shortest: the least R is every host's lower bound.
- A call that raised, or was never stamped as sent, is not credited (it may reach the server
  later still). The releasing worker's own sample counts first, so k < its call's round trip:
  no cool-down starts before its call was sent.

When the assumptions fail, two calls of a slot overlap by at most the credit (a tenth of a
period): a strict server answers 429 and the pause stops every worker, which is the net.

**Server hold.** A call may declare that the server holds its answer at least h seconds after
its check (a plain unban of a member: TDLib bans, sleeps a second, then sets Left). Then
t <= c - h, so a cool-down from c - h still starts after the check; one from c - max(h, k) is
safe by the hold or by the credit, whichever is larger. A call answered in less than h since
its send proves the hold did not happen (the user had left meanwhile: an instant answer), so
it gets only the credit; and no cool-down starts before the call was sent. A call that took
h or more without being held (the user left meanwhile *and* the network was that slow) may
overlap the slot's next call by up to h: the 429 pause is the net, as above.

**Spacing.** Grants are spaced ``period / limit`` on a grid, restarted from now after an idle
spell: slots freed by a burst would otherwise be re-granted as a burst, queue at the server,
and clock the next cycle by late completions (measured: 96-98% of the rate instead of 99%).

**Pauses, leases, clocks.** A 429 seen by any worker sets one pause deadline every grant obeys.
Busy slots and workers carry a lease: a dead worker's slots come back when it runs out, and a
live one renews them with each heartbeat. A store's clock may be set back: every time dated in
the future is pulled back to now (a cool-down restarts, a lease or pause keeps its length),
which never frees a slot early; a step forward ends cool-downs early, which no clock can tell.
"""

from __future__ import annotations

import bisect
import json
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

CREDIT_FRACTION = 0.85
"""Share of the fleet's fastest recent round trip credited to a slot's cool-down."""
_WINDOW_MARGIN = 0.002  # the server's clock granularity, added to the period
_CLOCK_TICK = time.get_clock_info("monotonic").resolution  # a round trip one tick too long
_MAX_CREDIT = 0.1  # of the period: the most a wrong estimate can overlap two calls


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` calls in any ``period`` seconds; grants ``spacing`` apart."""

    limit: int
    period: float

    @classmethod
    def of(cls, rate: float, period: float = 1.0) -> Rate:
        """The window of ``rate`` calls per ``period``: a fraction (0.5/s) becomes 1 per 2 s."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        limit = max(1, int(rate)) if rate >= 1 else 1
        return cls(limit, period * (limit / rate) + _WINDOW_MARGIN)

    @property
    def spacing(self) -> float:
        """Seconds between two grants on the grid."""
        return self.period / self.limit


@dataclass
class State:
    """One token's window, as every store keeps it (a JSON blob in SQLite and Redis)."""

    busy: dict[str, float] = field(default_factory=dict)
    """Granted slots not yet released, by lease expiry."""
    done: list[float] = field(default_factory=list)
    """Cool-down starts of the last period, ascending."""
    next_grant: float = 0.0
    paused_from: float = 0.0
    paused_until: float = 0.0
    workers: dict[str, list[float]] = field(default_factory=dict)
    """Owner -> [lease expiry, fastest round trip published (0: none yet)]."""

    def dumps(self) -> str:
        """The state as JSON."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, blob: str | bytes | None) -> State:
        """A state from JSON (an empty one from None or "")."""
        return cls(**json.loads(blob)) if blob else cls()


class Answer(NamedTuple):
    """The answer to a grant request."""

    granted: bool
    wait: float
    """Seconds until asking again may succeed (when not granted)."""
    paused: float
    """Seconds left of the token's pause (> 0: not granted because of it)."""


class Beat(NamedTuple):
    """The answer to a heartbeat."""

    paused: float
    """Seconds left of the token's pause."""
    workers: int
    """Workers holding a lease on the budget, the caller included."""


def owner_of(slot: str) -> str:
    """The worker a slot id (``owner:n``) belongs to."""
    return slot.split(":", 1)[0]


def _tidy(state: State, now: float, rate: Rate, lease: float) -> None:
    """Expire what ran out; pull back what a clock set back left dated in the future."""
    state.done = [min(at, now) for at in state.done if at > now - rate.period]
    state.busy = {s: min(e, now + lease) for s, e in state.busy.items() if e > now}
    workers = state.workers.items()
    state.workers = {o: [min(w[0], now + lease), w[1]] for o, w in workers if w[0] > now}
    state.next_grant = min(state.next_grant, now + rate.spacing)
    if state.paused_from > now:
        state.paused_until = now + (state.paused_until - state.paused_from)
        state.paused_from = now


def credit(state: State, rate: Rate, owner: str) -> float:
    """Seconds by which ``owner``'s answered call's cool-down starts before its completion."""
    if owner not in state.workers or not state.workers:
        return 0.0
    fastest = min(w[1] for w in state.workers.values())
    if fastest <= 0:
        return 0.0
    return min(CREDIT_FRACTION * max(0.0, fastest - _CLOCK_TICK), _MAX_CREDIT * rate.period)


def _publish(state: State, owner: str, now: float, lease: float, fastest: float | None) -> None:
    entry = state.workers.setdefault(owner, [now + lease, 0.0])
    entry[0] = now + lease
    if fastest is not None:
        entry[1] = fastest


def grant(state: State, now: float, rate: Rate, slot: str, lease: float) -> Answer:
    """Take ``slot`` for ``lease`` seconds if one is free, the grid allows and no pause."""
    _tidy(state, now, rate, lease)
    if state.paused_until > now:
        left = state.paused_until - now
        return Answer(False, left, left)
    if len(state.busy) + len(state.done) >= rate.limit:
        wait = state.done[0] + rate.period - now if state.done else rate.spacing
        return Answer(False, wait, 0.0)
    if now < state.next_grant:
        return Answer(False, state.next_grant - now, 0.0)
    # On the grid, so one late wake-up does not push back every later grant; after an idle
    # spell the grid restarts from now instead of bursting.
    behind = now - state.next_grant >= rate.spacing
    state.next_grant = (now if behind else state.next_grant) + rate.spacing
    state.busy[slot] = now + lease
    _publish(state, owner_of(slot), now, lease, None)
    return Answer(True, 0.0, 0.0)


def release(
    state: State,
    now: float,
    rate: Rate,
    slot: str,
    ago: float,
    *,
    lease: float,
    fastest: float | None = None,
    took: float | None = None,
    server_hold: float = 0.0,
) -> None:
    """Free ``slot``; its cool-down starts ``ago`` seconds back (its completion), credited
    when ``fastest`` (the owner's fastest round trip, its call's included) is given, and
    ``server_hold`` earlier when the answered call ``took`` (completion - send) at least that."""
    _tidy(state, now, rate, lease)
    state.busy.pop(slot, None)
    owner = owner_of(slot)
    k = 0.0
    if fastest is not None and owner in state.workers:
        state.workers[owner][1] = fastest
        k = credit(state, rate, owner)
    if took is not None and server_hold > 0 and took >= server_hold:
        k = min(max(server_hold, k), took)  # the check was at least the hold before; sent first
    # Kept in order (the oldest cool-down first): a held call's may start before others'.
    bisect.insort(state.done, now - max(0.0, ago) - k)


def pause(state: State, now: float, seconds: float) -> float:
    """Extend the pause to ``seconds`` from now; the seconds left of it."""
    if state.paused_from > now:  # the clock was set back: the pause keeps its length
        state.paused_until = now + (state.paused_until - state.paused_from)
        state.paused_from = now
    if now + seconds > state.paused_until:
        state.paused_from, state.paused_until = now, now + seconds
    return state.paused_until - now


def beat(
    state: State,
    now: float,
    rate: Rate,
    owner: str,
    slots: list[str],
    *,
    lease: float,
    adopt: list[float],
    fastest: float | None = None,
) -> Beat:
    """Renew ``owner``'s lease and its ``slots``' (only those still held: a slot whose release
    was lost must run out), and record cool-downs that began ``adopt`` seconds back."""
    _tidy(state, now, rate, lease)
    _publish(state, owner, now, lease, fastest)
    for slot in slots:
        if slot in state.busy:
            state.busy[slot] = now + lease
    if adopt:  # calls made while the store was unreachable, uncredited
        state.done = sorted([*state.done, *(now - max(0.0, ago) for ago in adopt)])
    return Beat(max(0.0, state.paused_until - now), len(state.workers))


def leave(state: State, owner: str) -> None:
    """Drop ``owner``'s lease and its slots (a clean shutdown)."""
    state.workers.pop(owner, None)
    state.busy = {s: e for s, e in state.busy.items() if owner_of(s) != owner}


def idle(state: State, now: float, rate: Rate) -> bool:
    """No call running or cooling down (safe to forget)."""
    return not state.busy and (not state.done or state.done[-1] <= now - rate.period)
