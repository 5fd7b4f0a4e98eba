from django.db import models
from django.db.models import Q

from restapi.message_ids import new_message_id_of_today


class Message(models.Model):
    """
    One message, kept in the system of record for its whole life and after.

    ``expiration_date`` is when the message stops being collectable: its
    creation time plus its timeout, or the time it was collected, whichever
    comes first. ``collected_at`` records a collection; collecting tests it
    rather than the clock, which is what makes a collection happen only once.
    A lease hides a live message from every collect and every other lease
    until ``leased_until``; the lease's acknowledgement collects it. All these
    times come from the database's clock.
    The id is drawn at random by the application (``restapi.message_ids``);
    ids written before that are the sequence's small numbers and stay as they
    are. Oldest first means by ``created_at``, ties broken by id, never by id
    alone.

    A text is kept either in ``text``, as sent, or, when ``CHAT_ENCRYPTION_KEYS``
    is set, only in ``sealed_text`` as an authenticated ciphertext bound to the
    message's id (``restapi.sealing``); the other column is then NULL.
    """

    id = models.BigIntegerField(primary_key=True, default=new_message_id_of_today, editable=False)
    username = models.CharField(max_length=150)
    # NULL, not "", when the text is sealed: an empty text is refused, a missing one is not a text.
    text = models.TextField(null=True)  # noqa: DJ001
    sealed_text = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField()
    expiration_date = models.DateTimeField()
    collected_at = models.DateTimeField(null=True, blank=True)
    # The last lease that held the message; kept after the lease ends, so that
    # acknowledging an ended lease can be told from acknowledging an unknown one.
    # NULL, not "", for a message never leased: the partial index leaves those out.
    lease_id = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "restapi_message"
        indexes = [
            # Serves the acknowledgement: only leased rows not yet collected.
            models.Index(
                fields=["lease_id"],
                condition=Q(collected_at__isnull=True, lease_id__isnull=False),
                name="message_open_lease_idx",
            ),
            # Serves the collect: only uncollected rows, found by recipient and
            # read oldest first in the order the collect hands them out, so a
            # collect stops after its limit instead of sorting the inbox.
            models.Index(
                fields=["username", "created_at", "id"],
                condition=Q(collected_at__isnull=True),
                name="message_inbox_queue_idx",
            ),
            # Serves the retention purge.
            models.Index(fields=["expiration_date"], name="message_expiration_idx"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} for {self.username}"


class MessageRing(models.Model):
    """
    What the ring of partitions of the message table (PostgreSQL) needs to
    remember: until when messages copied in from before the ring may still be
    collected. Their ids are random over the whole range, so they sit in any
    slot, and until then a collect looks in every slot instead of only in
    those of the days around today (``restapi.storage.partitions``).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    # The latest expiration_date of an uncollected message copied into the ring;
    # NULL when there was none.
    legacy_live_until = models.DateTimeField(null=True)

    class Meta:
        db_table = "restapi_message_ring"

    def __str__(self) -> str:
        return f"ring; older messages collectable until {self.legacy_live_until}"


class ThrottleWindow(models.Model):
    """
    The throttle's request count for one client in its current window, used when
    there is no Redis. One row per client address, updated in place by an upsert.
    """

    client = models.CharField(max_length=64, primary_key=True)
    # End of the counted window, in Unix seconds (the throttle's fixed windows are whole seconds).
    window_end = models.BigIntegerField(db_index=True)
    count = models.PositiveIntegerField()

    class Meta:
        db_table = "restapi_throttle_window"

    def __str__(self) -> str:
        return f"{self.client}: {self.count} until {self.window_end}"


class Deployment(models.Model):
    """
    The one row naming this deployment: every host that shares its database
    shares its id, and another deployment's database has another. Its Redis keys
    carry the id, so deployments that share a Redis database never meet there.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    deployment_id = models.CharField(max_length=32)

    class Meta:
        db_table = "restapi_deployment"

    def __str__(self) -> str:
        return self.deployment_id


class Inbox(models.Model):
    """
    A claimed inbox: a username whose messages only the holder of its token may
    read. An unclaimed username has no row and stays open to anyone, as every
    username was before claims existed.

    Only the SHA-256 digest of the token is kept (``restapi.tokens``): the token
    itself is shown once, when it is made, and cannot be recovered from here.
    """

    username = models.CharField(max_length=150, primary_key=True)
    # Hex SHA-256 of the current token; replaced as a whole when the token rotates.
    token_hash = models.CharField(max_length=64)
    claimed_at = models.DateTimeField()

    class Meta:
        db_table = "restapi_inbox"

    def __str__(self) -> str:
        return f"inbox {self.username} (claimed)"
