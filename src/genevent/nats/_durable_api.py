"""The plain data of durable notifies (no transport): a hosted manager's options for consuming
them, JetStream's acknowledgement of one, and what a consumer did."""

from __future__ import annotations

import dataclasses

__all__ = ("Durable", "DurableAck", "DurableStats")


@dataclasses.dataclass(frozen=True, slots=True)
class DurableAck:
    """JetStream's acknowledgement of a durable notify: the event is stored."""

    #: the event's sequence number in the stream
    seq: int
    #: the message id it was published with (``Nats-Msg-Id``)
    msg_id: str
    #: True if JetStream had it already (a retry with the same id): ``seq`` is the first one's
    duplicate: bool
    #: the stream's name
    stream: str


@dataclasses.dataclass(frozen=True, slots=True)
class Durable:
    """How a hosted manager consumes its durable notifies (``Node.start_manager(durable=)``).

    ``ack_wait``: seconds an event in flight at a node that died waits before JetStream
    delivers it again (while the handlers run, the event is reported in progress every half
    ``ack_wait``: a slow handler does not get it twice). ``max_deliver``: deliveries of one
    event at most; an event that reaches it is a dead letter. ``nak_delay``: seconds before
    an event the manager could not take (stopping, mailbox full) is delivered again.
    ``replay``: before the first live event, deliver every event of the stream that earlier
    instances already handled, in order (to rebuild the handlers' state).
    """

    ack_wait: float = 30.0
    max_deliver: int = 5
    nak_delay: float = 1.0
    replay: bool = False

    def __post_init__(self) -> None:
        if not self.ack_wait > 0:
            raise ValueError("ack_wait must be > 0 seconds")
        if self.max_deliver < 1:
            raise ValueError("max_deliver must be >= 1")
        if self.nak_delay < 0:
            raise ValueError("nak_delay must be >= 0 seconds")


@dataclasses.dataclass(slots=True)
class DurableStats:
    """What a hosted manager's durable consumer did since it started."""

    #: events delivered to the manager and acknowledged
    handled: int = 0
    #: of those, events delivered more than once (a duplicate for someone, perhaps)
    redelivered: int = 0
    #: events that could not be decoded: terminated, never delivered again
    undecodable: int = 0
    #: events given back for a later delivery (the manager could not take them)
    retried: int = 0
    #: events replayed before the first live one (``Durable(replay=True)``)
    replayed: int = 0
    #: events JetStream stopped delivering after ``max_deliver`` attempts
    dead_letters: int = 0
    #: the stream sequences of the newest dead letters
    dead_letter_seqs: list[int] = dataclasses.field(default_factory=list)
    #: the stream sequence of the last event handled
    last_seq: int = 0
