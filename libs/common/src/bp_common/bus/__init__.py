"""Bus port: publishing events, receiving messages, and dead-letter queues."""

from bp_common.bus.base import DeadLetter, DeadLetterQueue, Message, Publisher

__all__ = ["DeadLetter", "DeadLetterQueue", "Message", "Publisher"]
