"""Studio Flow: rendered from a readable template plus a secret PIN list, inside the provider.

Inputs `template` and `values` are canonical JSON text, so `pulumi preview --diff` shows widget and
prompt changes; `pins` is a secret input. The rendered definition holds the PINs and is never an
output: drift made in the Console is reported through the `drift` output instead.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)
from twilio.base.exceptions import TwilioException

from callmask.flow_template import (
    PINS,
    TemplateError,
    canonical_json,
    check_values,
    content_hash,
    render_flow,
)
from callmask.providers.twilio_provider import (
    ProviderError,
    TwilioProvider,
    answer_of,
    is_unknown,
    look_again,
    twilio_operation,
    unless_gone,
)

PUBLISHED = "published"
COMPARED_INPUTS = ("friendly_name", "template", "values", "pins", "stack")


class FlowRejected(ProviderError):
    """Twilio's Validate endpoint refused the rendered definition."""


class StudioFlowProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        try:
            template, values = json.loads(news["template"]), json.loads(news["values"])
            check_values(template, set(values) | {PINS})
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            failures.append(CheckFailure("template", f"template and values must be JSON text: {error}"))
        except TemplateError as error:
            failures.append(CheckFailure("template", str(error)))
        pins = news.get("pins")
        if not is_unknown(pins) and (not isinstance(pins, list) or not pins or not all(isinstance(p, str) for p in pins)):
            failures.append(CheckFailure("pins", "pins must be a non-empty list of strings"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in COMPARED_INPUTS if _differs(olds.get(key), news.get(key), key)]
        if olds.get("drift"):
            changed.append("drift")
        return DiffResult(changes=bool(changed), replaces=[], stables=["sid", "webhook_url"],
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Idempotent: a flow with the stack's name (left by an earlier create whose answer was lost) is
        adopted, never duplicated; after an unclear answer the flow is looked for again."""
        client, name = self.client(), props["friendly_name"]
        with twilio_operation(f"StudioFlow {name}", "create", props["pins"]):
            definition = self.validated_definition(client, props)
            flow = find_flow(client, name)
            if flow is None:
                try:
                    flow = client.studio.v2.flows.create(friendly_name=name, status=PUBLISHED, definition=definition,
                                                         commit_message=commit_message(props))
                    return CreateResult(flow.sid, self.outputs(props, flow))
                except TwilioException as error:
                    answer = answer_of(error)
                    if not answer.unclear:
                        raise
                    flow = look_again(lambda: find_flow(client, name))
                    if flow is None:
                        raise ProviderError(
                            f"StudioFlow {name}: create failed: {answer.describe()}; no flow named {name} exists "
                            "(looked again). Run `pulumi up` again: it adopts the flow if Twilio made it late.") from None
            flow = self.publish(client, flow.sid, props, definition)
        return CreateResult(flow.sid, self.outputs(props, flow))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = self.client()
        with twilio_operation(f"StudioFlow {news['friendly_name']} ({id_})", "update", news["pins"]):
            flow = self.publish(client, id_, news, self.validated_definition(client, news))
        return UpdateResult(self.outputs(news, flow))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"StudioFlow {props.get('friendly_name')} ({id_})", "read", props.get("pins") or []):
            flow = unless_gone(client, client.studio.v2.flows(id_).fetch)
        if flow is None:
            return ReadResult("", {})
        expected = render(props)
        wanted = (("friendly_name", flow.friendly_name, props["friendly_name"]), ("status", flow.status, PUBLISHED))
        differences = [key for key, live, expected_value in wanted if live != expected_value]
        differences += changed_widgets(expected, flow.definition or {})
        outs = {**props, "sid": flow.sid, "webhook_url": flow.webhook_url, "revision": flow.revision}
        outs["drift"] = f"revision {flow.revision} differs from the template in: {', '.join(differences)}" if differences else ""
        return ReadResult(id_, outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = self.client()
        with twilio_operation(f"StudioFlow {props.get('friendly_name')} ({id_})", "delete", props.get("pins") or []):
            flow = client.studio.v2.flows(id_)
            unless_gone(client, flow.delete, confirm=flow.fetch)

    @staticmethod
    def publish(client, sid: str, props: dict[str, Any], definition: str):
        return client.studio.v2.flows(sid).update(status=PUBLISHED, friendly_name=props["friendly_name"],
                                                  definition=definition, commit_message=commit_message(props))

    @staticmethod
    def validated_definition(client, props: dict[str, Any]) -> str:
        definition = canonical_json(render(props))
        try:
            result = client.studio.v2.flow_validate.update(
                friendly_name=props["friendly_name"], status=PUBLISHED, definition=definition,
                commit_message=commit_message(props))
        except TwilioException as error:
            answer = answer_of(error)
            if answer.unclear or answer.status == 429:
                raise
            raise FlowRejected(f"StudioFlow {props['friendly_name']}: Twilio refused the flow: {answer.describe()}",
                               props["pins"]) from None
        if not result.valid:
            raise FlowRejected(f"StudioFlow {props['friendly_name']}: Twilio says the flow is not valid.")
        return definition

    @staticmethod
    def outputs(props: dict[str, Any], flow) -> dict[str, Any]:
        return {**props, "sid": flow.sid, "webhook_url": flow.webhook_url, "revision": flow.revision, "drift": ""}


def find_flow(client, friendly_name: str):
    """The account's flow with this exact friendly name (each stack's flow has its own), or None."""
    return next((flow for flow in client.studio.v2.flows.stream(page_size=50) if flow.friendly_name == friendly_name),
                None)


def render(props: dict[str, Any]) -> dict[str, Any]:
    return render_flow(json.loads(props["template"]), json.loads(props["values"]), props["pins"])


def commit_message(props: dict[str, Any]) -> str:
    """Names the stack and the template revision; the hash covers no secret."""
    return f"callmask {props['stack']}: template {content_hash(props['template'], props['values'])}"


def changed_widgets(expected: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Names of widgets (and top-level keys) that differ; never their values, which may hold PINs."""
    def by_name(document: dict[str, Any]) -> dict[str, str]:
        return {state.get("name", "?"): canonical_json(state) for state in document.get("states", [])}

    expected_states, live_states = by_name(expected), by_name(live)
    names = sorted(n for n in expected_states.keys() | live_states.keys() if expected_states.get(n) != live_states.get(n))
    top = sorted(k for k in ("description", "initial_state", "flags") if expected.get(k) != live.get(k))
    return top + [f"widget {name}" for name in names]


def _differs(old: Any, new: Any, key: str) -> bool:
    if is_unknown(new):
        return True
    if key in ("template", "values") and isinstance(old, str) and isinstance(new, str):
        try:
            return json.loads(old) != json.loads(new)
        except json.JSONDecodeError:
            return True
    return old != new


class StudioFlow(Resource, module="twilio", name="StudioFlow"):
    """A published Studio Flow. Outputs: `sid`, `webhook_url`, `revision`, `drift`."""

    sid: pulumi.Output[str]
    webhook_url: pulumi.Output[str]
    revision: pulumi.Output[int]
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, stack: str, friendly_name: pulumi.Input[str], template: pulumi.Input[str],
                 values: pulumi.Input[str], pins: pulumi.Input[list[str]],
                 opts: pulumi.ResourceOptions | None = None):
        props = {"stack": stack, "friendly_name": friendly_name, "template": template, "values": values,
                 "pins": pulumi.Output.secret(pins), "sid": None, "webhook_url": None, "revision": None, "drift": None}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["pins"]))
        super().__init__(StudioFlowProvider(), name, props, opts)
