"""
This deployment's id, held by its database.

A migration draws it at random; if the row is missing (a database emptied by
hand, or a copy whose row an operator deleted to make it a deployment of its
own) the first process to need it draws a new one, and every other process
reads that one. It is read once per process.
"""

from __future__ import annotations

import secrets

from restapi.models import Deployment
from restapi.storage.per_process import per_process


def new_deployment_id() -> str:
    return secrets.token_hex(8)


@per_process
def deployment_id() -> str:
    """The id every host of this deployment agrees on, because they share the database."""
    deployment, _ = Deployment.objects.get_or_create(pk=1, defaults={"deployment_id": new_deployment_id()})
    return deployment.deployment_id
