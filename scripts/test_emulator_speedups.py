"""Tests of the emulator speed-ups (scripts/emulator_speedups.py): each patched lookup answers
exactly as moto's own, on moto's in-process backends (no server).

Run with the emulator's venv:  .venv/bin/python scripts/test_emulator_speedups.py   (`make realism-check` runs it too)
"""

from __future__ import annotations

import os
import sys
import time
import unittest

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.ec2.models.core import TaggedEC2Resource  # noqa: E402
from moto.sqs.exceptions import InvalidParameterValue  # noqa: E402
from moto.sqs.models import Queue, SQSBackend, sqs_backends  # noqa: E402

ORIGINAL_GET_TAGS = TaggedEC2Resource.get_tags
ORIGINAL_ATTRIBUTES = Queue.attributes.fget
ORIGINAL_RETENTION = SQSBackend.is_message_valid_based_on_retention_period

import emulator_speedups  # noqa: E402

emulator_speedups.install()


class Speedups(unittest.TestCase):
    def test_an_ec2_resources_tags_are_the_ones_describe_tags_gives(self) -> None:
        ec2 = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        volumes = [ec2.create_volume(size=1, zone_name="us-east-1a") for _ in range(3)]
        ec2.create_tags([v.id for v in volumes[:2]], {"backup": "daily", "owner": "team-a"})
        ec2.create_tags([volumes[0].id], {"backup-fleet:plan": "daily"})
        snapshot = ec2.create_snapshot(volumes[0].id, "test")
        ec2.create_tags([snapshot.id], {"backup-fleet:source": volumes[0].id})
        for resource in [*volumes, snapshot]:
            self.assertEqual(resource.get_tags(), ORIGINAL_GET_TAGS(resource), resource.id)
        self.assertEqual(volumes[2].get_tags(), [])
        # Tag filters, which go through get_tags, select the same resources.
        found = ec2.describe_volumes(filters={"tag:backup-fleet:plan": ["daily"]})
        self.assertEqual([v.id for v in found], [volumes[0].id])

    def test_a_messages_retention_is_judged_as_moto_judges_it(self) -> None:
        sqs = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        sqs.create_queue("speedups", MessageRetentionPeriod="60")
        fresh = sqs.send_message("speedups", "fresh")
        old = sqs.send_message("speedups", "old")
        old.sent_timestamp = int((time.time() - 120) * 1000)
        for message in (fresh, old):
            self.assertEqual(
                sqs.is_message_valid_based_on_retention_period("speedups", message),
                ORIGINAL_RETENTION(sqs, "speedups", message),
            )
        self.assertTrue(sqs.is_message_valid_based_on_retention_period("speedups", fresh))
        self.assertFalse(sqs.is_message_valid_based_on_retention_period("speedups", old))

    def test_a_send_deduplicates_by_content_as_moto_does_and_attributes_stay_whole(self) -> None:
        sqs = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        sqs.create_queue("speedups-cbd.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        sqs.create_queue("speedups-plain.fifo", FifoQueue="true")
        sqs.create_queue("speedups-standard")
        sqs.send_message("speedups-standard", "body")
        first = sqs.send_message("speedups-cbd.fifo", "same body", group_id="g")
        second = sqs.send_message("speedups-cbd.fifo", "same body", group_id="g")
        self.assertIsNotNone(first.deduplication_id)
        self.assertEqual(first.deduplication_id, second.deduplication_id)
        self.assertEqual(len(sqs.get_queue("speedups-cbd.fifo")._messages), 1, "deduplicated by content")
        with self.assertRaises(InvalidParameterValue):  # no deduplication id, no content-based deduplication
            sqs.send_message("speedups-plain.fifo", "body", group_id="g")
        # Outside a send, a queue's attributes are all of moto's own.
        for name in ("speedups-cbd.fifo", "speedups-plain.fifo", "speedups-standard"):
            queue = sqs.get_queue(name)
            self.assertEqual(queue.attributes, ORIGINAL_ATTRIBUTES(queue), name)
            self.assertIn("ApproximateNumberOfMessages", queue.attributes)


if __name__ == "__main__":
    unittest.main()
