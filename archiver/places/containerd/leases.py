"""containerd leases: what a load writes (content, ingests, snapshots) is held by its lease
until the image records and labels that keep it are in place; then the lease goes, and
containerd's garbage collector keeps what an image reaches and removes the rest (all of
it, when the load failed). A lease expires after a day, so a load killed midway leaves
nothing for good.
"""

from __future__ import annotations

import datetime
import os
import secrets

from archiver.model.digest import Digest
from archiver.places.containerd.client import ContainerdClient
from archiver.places.containerd.messages import message

_SERVICE = "leases.v1.Leases"
_EXPIRE_AFTER = datetime.timedelta(hours=24)


def create(client: ContainerdClient) -> str:
    """A new lease, made the client's: every call it makes from now on is held by it."""
    lease = f"archiver-{os.getpid()}-{secrets.token_hex(6)}"
    expires = datetime.datetime.now(datetime.UTC) + _EXPIRE_AFTER
    labels = {"containerd.io/gc.expire": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
    client.method(_SERVICE, "Create", "CreateLeaseResponse")(
        message("CreateLeaseRequest")(id=lease, labels=labels), "create a lease", lease=False
    )
    client.lease = lease
    return lease


def hold(client: ContainerdClient, digest: Digest) -> None:
    """Hold a blob the store already had under the client's lease too (so nothing removes
    it before the images that use it are recorded)."""
    assert client.lease is not None
    resource = message("LeaseResource")(id=str(digest), type="content")
    client.method(_SERVICE, "AddResource", "Empty")(
        message("AddResourceRequest")(id=client.lease, resource=resource),
        f"hold blob {digest}",
        lease=False,
    )


def release(client: ContainerdClient) -> None:
    """Delete the client's lease (what no image keeps is then collected)."""
    lease, client.lease = client.lease, None
    if lease is None:
        return
    client.method(_SERVICE, "Delete", "Empty")(
        message("DeleteLeaseRequest")(id=lease), f"delete lease {lease}", lease=False
    )
