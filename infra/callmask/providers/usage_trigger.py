"""Spend alert: a Usage Trigger on the account's outbound call spend (`calls-outbound`, by price, daily)
that calls the stack's callback URL the day spend passes `daily_usd`. Toll fraud shows there first.

Twilio's API changes a trigger's callback in place but never its amount (an update takes CallbackUrl,
CallbackMethod and FriendlyName only), so a new amount replaces the trigger: the new one is made before
the old one is deleted, so the alarm never lapses. The friendly name holds the stack and the amount, so a
create whose answer was lost is found again, never made twice.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from callmask.providers.twilio_provider import DetailedDiff, TwilioProvider, create_once, twilio_operation, unless_gone

CATEGORY, TRIGGER_BY, RECURRING = "calls-outbound", "price", "daily"
REPLACED_ONLY = ("daily_usd", "usage_category", "trigger_by", "recurring")


def friendly_name(props: dict[str, Any]) -> str:
    return f"callmask-{props['stack']} outbound calls over ${props['daily_usd']} a day"


class SpendAlertProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if not str(news.get("callback_url", "")).startswith("https://"):
            failures.append(CheckFailure("callback_url", "callback_url must be an https:// URL"))
        try:
            if float(news.get("daily_usd")) <= 0:
                raise ValueError
        except (TypeError, ValueError):
            failures.append(CheckFailure("daily_usd", "daily_usd must be a positive amount of dollars"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in ("stack", "daily_usd") if olds.get(key) != news.get(key)]
        if any(key in (olds.get("drift") or "") for key in REPLACED_ONLY) and "daily_usd" not in replaces:
            replaces.append("daily_usd")  # the amount or category changed in the Console: only a new trigger fixes it
        changed = replaces + (["callback_url"] if olds.get("callback_url") != news.get("callback_url") else [])
        if olds.get("drift"):
            changed.append("drift")
        return DetailedDiff(changed, replaces, stables=["sid"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        client, name = self.client(), friendly_name(props)
        with twilio_operation(f"SpendAlert {name}", "create"):
            trigger = create_once(f"SpendAlert {name}", lambda: find_trigger(client, name, props["daily_usd"]),
                                  lambda: client.usage.triggers.create(
                                      callback_url=props["callback_url"], trigger_value=props["daily_usd"],
                                      usage_category=CATEGORY, trigger_by=TRIGGER_BY, recurring=RECURRING,
                                      friendly_name=name))
            if trigger.callback_url != props["callback_url"]:
                trigger = client.usage.triggers(trigger.sid).update(callback_url=props["callback_url"])
        return CreateResult(trigger.sid, {**props, "sid": trigger.sid, "drift": ""})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """The callback in place; the other fields are put back by replacement (see the module)."""
        client = self.client()
        with twilio_operation(f"SpendAlert {friendly_name(news)} ({id_})", "update"):
            client.usage.triggers(id_).update(callback_url=news["callback_url"], friendly_name=friendly_name(news))
        return UpdateResult({**news, "sid": id_, "drift": ""})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"SpendAlert {id_}", "read"):
            trigger = unless_gone(client, client.usage.triggers(id_).fetch)
        if trigger is None:
            return ReadResult("", {})
        live = {"callback_url": trigger.callback_url, "daily_usd": trigger.trigger_value,
                "usage_category": trigger.usage_category, "trigger_by": trigger.trigger_by,
                "recurring": trigger.recurring}
        wanted = {"callback_url": props["callback_url"], "daily_usd": props["daily_usd"], "usage_category": CATEGORY,
                  "trigger_by": TRIGGER_BY, "recurring": RECURRING}
        changed = sorted(key for key in wanted if str(live[key]) != str(wanted[key])
                         and not (key == "daily_usd" and _same_amount(live[key], wanted[key])))
        drift = f"changed outside callmask: {', '.join(changed)}" if changed else ""
        return ReadResult(id_, {**props, "sid": id_, "drift": drift})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self.client()
        with twilio_operation(f"SpendAlert {id_}", "delete"):
            trigger = client.usage.triggers(id_)
            unless_gone(client, trigger.delete, confirm=trigger.fetch)


def find_trigger(client, name: str, daily_usd: str):
    """The stack's trigger for this amount (a trigger changed in the Console is not adopted: it is replaced)."""
    return next((trigger for trigger in client.usage.triggers.stream(
        usage_category=CATEGORY, trigger_by=TRIGGER_BY, recurring=RECURRING, page_size=50)
        if trigger.friendly_name == name and _same_amount(trigger.trigger_value, daily_usd)), None)


def _same_amount(live: Any, wanted: str) -> bool:
    try:
        return float(live) == float(wanted)
    except (TypeError, ValueError):
        return False


class SpendAlert(Resource, module="twilio", name="SpendAlert"):
    """A daily alarm on outbound call spend. Outputs: `sid`, `drift`."""

    sid: pulumi.Output[str]
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, stack: str, daily_usd: str, callback_url: str,
                 opts: pulumi.ResourceOptions | None = None):
        props = {"stack": stack, "daily_usd": daily_usd, "callback_url": callback_url, "sid": None, "drift": None}
        super().__init__(SpendAlertProvider(), name, props, opts)
