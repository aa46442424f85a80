"""Speed-ups for the local moto server (5.2.5): the same answers, without moto's quadratic paths.

With a few thousand volumes, snapshots and queued messages (the 2,000-volume estate of
`make bench`), two of moto's lookups dominate the server's time and grow with its whole state, so
every request slows down as the estate grows until the workers' lease extensions time out:

* an EC2 resource's tags: `TaggedEC2Resource.get_tags` runs `describe_tags` with a `resource-id`
  filter, which copies and regex-matches every tag of every resource in the region; a Describe
  with a tag filter does that once per candidate resource. Here it reads the resource's own
  entry in the backend's tag map.
* an SQS message's retention: `receive_message` reads the queue's `MessageRetentionPeriod` once
  per received message through `get_queue_attributes`, which computes every attribute, the
  approximate message counts included (a scan of the whole queue). Here it reads the one value.

Installed by `scripts/emulator.sh start` always; `scripts/test_emulator_speedups.py` checks that
the answers are moto's own.
"""

from typing import Any


def install() -> None:
    from moto.core.utils import unix_time
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
    from moto.sqs.models import Message, SQSBackend

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

    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
