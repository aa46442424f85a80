"""Speed-ups for the local moto server (5.2.5): the same answers, without moto's quadratic paths.

With a few thousand volumes, snapshots and queued messages (the 2,000-volume estate of
`make bench`), two of moto's lookups dominate the server's time and grow with its whole state, so
every request slows down as the estate grows until the workers' lease extensions time out:

* an EC2 resource's tags: `TaggedEC2Resource.get_tags` runs `describe_tags` with a `resource-id`
  filter, which copies and regex-matches every tag of every resource in the region; a Describe
  with a tag filter does that once per candidate resource. Here it reads the resource's own
  entry in the backend's tag map.
* an SQS queue's attributes: `receive_message` reads the queue's `MessageRetentionPeriod` once
  per received message through `get_queue_attributes`, and `send_message` reads
  `ContentBasedDeduplication` once per sent message through `Queue.attributes`; both compute every
  attribute, the approximate message counts included (three scans of the whole queue). Here the
  retention is read alone, and while a message is being sent `Queue.attributes` holds only the
  one attribute the send reads.

Installed by `scripts/emulator.sh start` always; `scripts/test_emulator_speedups.py` checks that
the answers are moto's own.
"""

import threading
from typing import Any


def install() -> None:
    from moto.core.utils import unix_time
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
    from moto.sqs.models import Message, Queue, SQSBackend

    def get_tags(self: Any) -> list[dict[str, str]]:
        rid = self.id
        if not rid:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
        tags = self.ec2_backend.tags.get(rid, {})
        return [{"resource_id": rid, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Message) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]

    # Requests run on the server's threads: the send in progress is the thread's own.
    sending = threading.local()
    all_attributes = Queue.attributes.fget  # type: ignore[attr-defined]

    def attributes(self: Any) -> dict[str, Any]:
        if not getattr(sending, "on", False):
            return all_attributes(self)
        if not self.fifo_queue:
            return {}
        value = self.content_based_deduplication
        return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}

    original_send = SQSBackend.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Restores what it found: a send can cause another (a queue subscribed to a topic).
        outer = getattr(sending, "on", False)
        sending.on = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            sending.on = outer

    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
