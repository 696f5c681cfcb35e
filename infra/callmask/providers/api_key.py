"""A standard API key made by the stack for one purpose (the PIN guard's Function reaching Sync): Twilio's
restricted keys do not cover Sync, and the account's auth token never leaves the operator's machine.

Twilio shows a key's secret once, in the answer to its create. So a create whose answer was lost cannot
adopt what it made: the key it finds under the stack's name (its secret unknown) is deleted and a new one
made. A key deleted in the Console is dropped by `pulumi refresh` and made again by `pulumi up`; to rotate
a key, `pulumi up --replace` it: the new key is made and put in place before the old one is deleted.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from callmask.providers.twilio_provider import (
    DetailedDiff,
    TwilioProvider,
    friendly_name_checked,
    twilio_operation,
    unless_gone,
)


class ApiKeyProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return friendly_name_checked(news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = ["friendly_name"] if olds.get("friendly_name") != news.get("friendly_name") else []
        return DetailedDiff(changed, stables=["sid", "secret"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        client, name = self.client(), props["friendly_name"]
        account = client.api.v2010.accounts(client.account_sid)
        with twilio_operation(f"ApiKey {name}", "create"):
            for orphan in [key for key in account.keys.stream(page_size=50) if key.friendly_name == name]:
                unless_gone(client, account.keys(orphan.sid).delete)  # made by an attempt whose answer was lost
            key = account.new_keys.create(friendly_name=name)
        return CreateResult(key.sid, {**props, "sid": key.sid, "secret": key.secret})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.client()
        with twilio_operation(f"ApiKey {id_}", "update"):
            client.api.v2010.accounts(client.account_sid).keys(id_).update(friendly_name=news["friendly_name"])
        return UpdateResult({**news, "sid": id_, "secret": olds["secret"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"ApiKey {id_}", "read"):
            key = unless_gone(client, client.api.v2010.accounts(client.account_sid).keys(id_).fetch)
        return ReadResult(id_, props) if key else ReadResult("", {})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self.client()
        with twilio_operation(f"ApiKey {id_}", "delete"):
            key = client.api.v2010.accounts(client.account_sid).keys(id_)
            unless_gone(client, key.delete, confirm=key.fetch)


class ApiKey(Resource, module="twilio", name="ApiKey"):
    """Outputs: `sid`, `secret` (secret)."""

    sid: pulumi.Output[str]
    secret: pulumi.Output[str]

    def __init__(self, name: str, *, friendly_name: str, opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["secret"]))
        super().__init__(ApiKeyProvider(), name, {"friendly_name": friendly_name, "sid": None, "secret": None}, opts)
