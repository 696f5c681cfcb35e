"""Studio Flow: rendered from a readable template plus a secret PIN list, inside the provider.

Inputs `template` and `values` are canonical JSON text, so `pulumi preview --diff` shows widget and
prompt changes; `pins` is a secret input (empty when the line's Function checks the PIN, and
`pin_check_url` names the Function). The rendered definition holds the PINs and is never an output:
drift made in the Console is reported through the `drift` output instead.

With `adopt_sid` (callmask:flowSid, written by `callmask adopt`) the provider takes over a flow built in
the Console instead of creating one: the same SID and webhook URL, one new revision; the definition it had
before is kept (a secret output: it may hold PINs) and published again, under its old name, by `destroy`,
which never deletes an adopted flow, except when the stack has moved to a flow of its own (callmask:flowSid
removed): then the adopted flow is deleted with its revisions.
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

from callmask.providers.twilio_provider import (
    DetailedDiff,
    ProviderError,
    TwilioProvider,
    answer_of,
    is_unknown,
    look_again,
    twilio_operation,
    unless_gone,
)
from callmask.studio.flow_template import (
    PIN_CHECK_URL,
    PINS,
    TemplateError,
    canonical_json,
    check_values,
    content_hash,
    render_flow,
)
from callmask.twilio import twilio_api

PUBLISHED, DRAFT = "published", "draft"
COMPARED_INPUTS = ("friendly_name", "template", "values", "pins", "pin_check_url", "stack", "test_users")
CALLMASK_COMMIT = "callmask "  # how every revision callmask writes begins (commit_message)
ADOPTION_OUTPUTS = ("adopted", "console_name", "console_definition")
TEST_USERS_DRIFT = "test users changed outside callmask"  # the one part of `drift` that needs no new revision


class FlowRejected(ProviderError):
    """Twilio's Validate endpoint refused the rendered definition."""


class StudioFlowProvider(TwilioProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        pins = news.get("pins")
        if not is_unknown(pins) and (not isinstance(pins, list) or not all(isinstance(p, str) for p in pins)):
            failures.append(CheckFailure("pins", "pins must be a list of strings"))
        try:
            template, values = json.loads(news["template"]), json.loads(news["values"])
            filled = set(values) | ({PINS} if pins else set()) | ({PIN_CHECK_URL} if "pin_check_url" in news else set())
            check_values(template, filled)
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            failures.append(CheckFailure("template", f"template and values must be JSON text: {error}"))
        except TemplateError as error:
            failures.append(CheckFailure("template", str(error)))
        users = news.get("test_users", [])
        if not is_unknown(users) and (not isinstance(users, list) or not all(isinstance(u, str) for u in users)):
            failures.append(CheckFailure("test_users", "test_users must be a list of strings"))
        if not isinstance(news.get("publish", True), bool):
            failures.append(CheckFailure("publish", "publish must be true or false"))
        adopt = news.get("adopt_sid")
        if adopt and not is_unknown(adopt) and (olds or {}).get("adopt_sid") != adopt:
            if problem := self.not_adoptable(adopt, news.get("stack")):
                failures.append(CheckFailure("adopt_sid", problem))
        return CheckResult(news, failures)

    def not_adoptable(self, sid: str, stack: str | None) -> str | None:
        """Why callmask:flowSid cannot be taken over (looked up in a preview too), or None. Without
        credentials (a pull-request preview) it is not looked up: `up` does."""
        try:
            client = self.client()
            flow = unless_gone(client, client.studio.v2.flows(sid).fetch)
            if flow is None:
                return f"callmask:flowSid {sid} is not a Studio flow of this Twilio account (check the SID in the Console)"
            manager = managing_stack(flow.commit_message)
            if manager is not None and manager != stack:
                return f"callmask:flowSid {sid} is managed by callmask stack {manager!r}: adopt a flow no stack manages"
        except twilio_api.MissingCredentials:
            return None
        except TwilioException as error:
            return f"cannot look up callmask:flowSid {sid}: {answer_of(error).describe()}. Run it again."
        return None

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in COMPARED_INPUTS if _differs(olds.get(key), news.get(key), key)]
        if olds.get("drift"):
            changed.append("drift")
        if publishes(news) and olds.get("draft_revision"):
            changed.append("publish")  # the draft test users tried goes to every caller
        replaces = ["adopt_sid"] if (olds.get("adopt_sid") or None) != (news.get("adopt_sid") or None) else []
        return DetailedDiff(changed + replaces, replaces, stables=["sid", "webhook_url"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Idempotent: a flow with the stack's name (left by an earlier create whose answer was lost) is
        adopted, never duplicated; after an unclear answer the flow is looked for again. A new flow has no
        revision for callers yet, so its first definition is published whatever `publish` says."""
        client, name = self.client(), props["friendly_name"]
        if props.get("adopt_sid"):
            return self.adopt(client, props)
        with twilio_operation(f"StudioFlow {name}", "create", secrets_of(props)):
            definition = self.validated_definition(client, props)
            flow = find_flow(client, name)
            if flow is None:
                try:
                    flow = client.studio.v2.flows.create(friendly_name=name, status=PUBLISHED, definition=definition,
                                                         commit_message=commit_message(props))
                except TwilioException as error:
                    answer = answer_of(error)
                    if not answer.unclear:
                        raise
                    flow = look_again(lambda: find_flow(client, name))
                    if flow is None:
                        raise ProviderError(
                            f"StudioFlow {name}: create failed: {answer.describe()}; no flow named {name} exists "
                            "(looked again). Run `pulumi up` again: it adopts the flow if Twilio made it late.") from None
                    flow = self.write(client, flow.sid, props, definition, PUBLISHED)
            else:
                flow = self.write(client, flow.sid, props, definition, PUBLISHED)
            set_test_users(client, flow.sid, props)
        return CreateResult(flow.sid, self.outputs(props, flow, live=flow.revision))

    def adopt(self, client, props: dict[str, Any]) -> CreateResult:
        """Takes over a Console-built flow in place: its definition from before (the latest revision callmask
        did not write, so a re-run after a lost answer finds the same one) is kept for `destroy`, then the
        stack's definition is published as one new revision."""
        sid = props["adopt_sid"]
        with twilio_operation(f"StudioFlow {sid}", "adopt", secrets_of(props)):
            definition = self.validated_definition(client, props)
            before = pre_adoption_revision(client, sid)
            flow = self.write(client, sid, props, definition, PUBLISHED,
                              f"callmask {props['stack']}: adopted from the Console; template "
                              f"{content_hash(props['template'], props['values'])}")
            set_test_users(client, flow.sid, props)
        adopted = {"adopted": True, "console_name": before.friendly_name if before else flow.friendly_name,
                   "console_definition": canonical_json(before.definition) if before else ""}
        return CreateResult(flow.sid, {**self.outputs(props, flow, live=flow.revision), **adopted})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        result = self.write_update(id_, olds, news)
        # What an adopted flow had before callmask stays with it until `destroy` hands it back.
        result.outs.update({key: olds[key] for key in ADOPTION_OUTPUTS if key in olds})
        return result

    def write_update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not publishes(news) and olds.get("pin_check_url") and not news.get("pin_check_url"):
            raise ProviderError(
                f"StudioFlow {news['friendly_name']}: pinCheck function -> studio with publish false would delete the "
                "PIN-check Function that the published revision (every caller's) still uses. Make this change with "
                "callmask:publish true (the deploy workflow's publish job).")
        client = self.client()
        with twilio_operation(f"StudioFlow {news['friendly_name']} ({id_})", "update", secrets_of(news)):
            definition = self.validated_definition(client, news)
            if test_users_of(olds) != test_users_of(news) or TEST_USERS_DRIFT in (olds.get("drift") or ""):
                set_test_users(client, id_, news)  # before a draft: the people who try it reach it at once
            if publishes(news):
                if not needs_revision(olds, news):  # only the test users changed
                    return UpdateResult({**olds, **news, "drift": ""})
                flow = self.write(client, id_, news, definition, PUBLISHED)
                return UpdateResult(self.outputs(news, flow, live=flow.revision))
            live = self.keep_live_revision(client, id_, olds, news)
            flow = client.studio.v2.flows(id_).fetch()
            if json.loads(definition) != live.definition or flow.revision != live.revision:
                flow = self.write(client, id_, news, definition, DRAFT)
        return UpdateResult(self.outputs(news, flow, live=live.revision))

    def keep_live_revision(self, client, id_: str, olds: dict[str, Any], news: dict[str, Any]):
        """The published revision callers get; one published outside callmask since the last `up` is
        replaced by the one callmask had published (revisions are immutable: fetched by number)."""
        live = client.studio.v2.flows(id_).revisions("LatestPublished").fetch()
        recorded = revision_number(olds.get("live_revision"))
        if recorded and live.revision != recorded:
            kept = client.studio.v2.flows(id_).revisions(str(recorded)).fetch()
            self.write(client, id_, news, canonical_json(kept.definition), PUBLISHED,
                       f"callmask {news['stack']}: revision {recorded} published again")
            live = client.studio.v2.flows(id_).revisions("LatestPublished").fetch()
        return live

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self.client()
        with twilio_operation(f"StudioFlow {props.get('friendly_name')} ({id_})", "read", secrets_of(props)):
            flow = unless_gone(client, client.studio.v2.flows(id_).fetch)
            if flow is None:
                return ReadResult("", {})
            live = flow if flow.status == PUBLISHED else \
                client.studio.v2.flows(id_).revisions("LatestPublished").fetch()
            # Test users only reach drafts: read them where the stack stages drafts or lists any.
            staged = not publishes(props) or test_users_of(props)
            users = (client.studio.v2.flows(id_).test_users().fetch().test_users or []) if staged else []
        differences = [] if flow.friendly_name == props["friendly_name"] else ["friendly_name"]
        differences += revision_drift(render(props), props, flow, live)
        if staged and sorted(users) != sorted(test_users_of(props)):
            differences.append(TEST_USERS_DRIFT)
        # The revisions stay those callmask made (the drift names any others): `up` puts them back.
        outs = {**props, "sid": flow.sid, "webhook_url": flow.webhook_url, "revision": flow.revision,
                "live_revision": revision_number(props.get("live_revision")) or live.revision,
                "draft_revision": revision_number(props.get("draft_revision")), "drift": "; ".join(differences)}
        return ReadResult(id_, outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """A flow the stack made is deleted; an adopted one is handed back: its definition from before
        adoption published again (revisions are immutable) under its old name, never deleted."""
        client = self.client()
        if props.get("adopted"):
            with twilio_operation(f"StudioFlow {id_}", "hand back", secrets_of(props)):
                if (made := find_flow(client, props["friendly_name"])) is not None and made.sid != id_:
                    # callmask:flowSid removed: the line moved to a flow of its own, so the adopted one goes,
                    # with every revision (and the Console's PINs in them).
                    flow = client.studio.v2.flows(id_)
                    unless_gone(client, flow.delete, confirm=flow.fetch)
                elif props.get("console_definition") and unless_gone(client, client.studio.v2.flows(id_).fetch):
                    client.studio.v2.flows(id_).update(
                        status=PUBLISHED, friendly_name=props.get("console_name") or props["friendly_name"],
                        definition=props["console_definition"],
                        commit_message=f"callmask {props['stack']}: handed back (the definition from before adoption)")
            return
        with twilio_operation(f"StudioFlow {props.get('friendly_name')} ({id_})", "delete", secrets_of(props)):
            flow = client.studio.v2.flows(id_)
            unless_gone(client, flow.delete, confirm=flow.fetch)

    @staticmethod
    def write(client, sid: str, props: dict[str, Any], definition: str, status: str, message: str | None = None):
        """A new revision: published (every caller gets it) or a draft (only test users do)."""
        return client.studio.v2.flows(sid).update(status=status, friendly_name=props["friendly_name"],
                                                  definition=definition,
                                                  commit_message=message or commit_message(props))

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
                               secrets_of(props)) from None
        if not result.valid:
            raise FlowRejected(f"StudioFlow {props['friendly_name']}: Twilio says the flow is not valid.")
        return definition

    @staticmethod
    def outputs(props: dict[str, Any], flow, live: int) -> dict[str, Any]:
        draft = flow.revision if flow.status == DRAFT else None
        return {**props, "sid": flow.sid, "webhook_url": flow.webhook_url, "revision": flow.revision,
                "live_revision": live, "draft_revision": draft, "drift": ""}


def needs_revision(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """Whether an update writes the flow: its inputs changed, a draft waits, or a revision drifted."""
    drifted = [part for part in (olds.get("drift") or "").split("; ") if part and part != TEST_USERS_DRIFT]
    return bool(drifted or olds.get("draft_revision") or any(
        _differs(olds.get(key), news.get(key), key) for key in COMPARED_INPUTS if key != "test_users"))


def revision_number(value: Any) -> int | None:
    """A revision number as the state gives it back (the engine's numbers are floats: 3.0)."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def publishes(props: dict[str, Any]) -> bool:
    return props.get("publish", True) is not False


def test_users_of(props: dict[str, Any]) -> list[str]:
    return list(props.get("test_users") or [])


def secrets_of(props: dict[str, Any]) -> list[str]:
    """What a failure message must never show: the PINs, and the test users (they may be secret)."""
    return [*(props.get("pins") or []), *test_users_of(props)]


def set_test_users(client, sid: str, props: dict[str, Any]) -> None:
    """Studio's Test Users reach the latest revision, draft or not. Twilio's API takes no empty list, so
    a stack that lists none leaves the flow's list as it is (they would only reach a draft)."""
    if users := test_users_of(props):
        client.studio.v2.flows(sid).test_users().update(test_users=users)


def revision_drift(expected: dict[str, Any], props: dict[str, Any], flow, live) -> list[str]:
    """What differs from what callmask wrote, the revision callers get and the draft told apart; widget
    names only, never values (they may hold PINs)."""
    if publishes(props):
        found = [f"revision {live.revision} differs from the template in: {', '.join(widgets)}"
                 for widgets in [changed_widgets(expected, live.definition or {})] if widgets]
        if flow.status == DRAFT:
            found.append(f"draft revision {flow.revision} was saved outside callmask (callers get revision "
                         f"{live.revision}; test users get the draft)")
        return found
    found = []
    recorded_live = revision_number(props.get("live_revision"))
    recorded_draft = revision_number(props.get("draft_revision"))
    if recorded_live and live.revision != recorded_live:
        found.append(f"published revision {live.revision} was published outside callmask (callmask published "
                     f"revision {recorded_live})")
    if recorded_draft and (flow.status != DRAFT or flow.revision != recorded_draft):
        found.append(f"draft revision {recorded_draft} is no longer the latest (revision {flow.revision}, {flow.status})")
    elif recorded_draft and (widgets := changed_widgets(expected, flow.definition or {})):
        found.append(f"draft revision {flow.revision} differs from the template in: {', '.join(widgets)}")
    return found


def managing_stack(commit_message: str | None) -> str | None:
    """The callmask stack that wrote a revision (`callmask <stack>: ...`), or None for any other writer."""
    if not commit_message or not commit_message.startswith(CALLMASK_COMMIT) or ":" not in commit_message:
        return None
    return commit_message[len(CALLMASK_COMMIT):].split(":", 1)[0]


def pre_adoption_revision(client, sid: str):
    """The latest revision of a flow that callmask did not write (the Console's), or None."""
    revisions = sorted(client.studio.v2.flows(sid).revisions.stream(page_size=50), key=lambda r: -r.revision)
    for revision in revisions:
        if managing_stack(revision.commit_message) is None:
            return client.studio.v2.flows(sid).revisions(str(revision.revision)).fetch()
    return None


def find_flow(client, friendly_name: str):
    """The flow the stack made: the account's flow with this exact friendly name (each stack's flow has its
    own) whose first revision callmask wrote (a flow adopted from the Console carries the name too), or None."""
    return next((flow for flow in client.studio.v2.flows.stream(page_size=50) if flow.friendly_name == friendly_name
                 and managing_stack(client.studio.v2.flows(flow.sid).revisions("1").fetch().commit_message)), None)


def render(props: dict[str, Any]) -> dict[str, Any]:
    return render_flow(json.loads(props["template"]), json.loads(props["values"]), props["pins"],
                       props.get("pin_check_url"))


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
    if key == "test_users":  # states from before test users hold none
        return list(old or []) != list(new or [])
    if key in ("template", "values") and isinstance(old, str) and isinstance(new, str):
        try:
            return json.loads(old) != json.loads(new)
        except json.JSONDecodeError:
            return True
    return old != new


class StudioFlow(Resource, module="twilio", name="StudioFlow"):
    """A Studio Flow: each change published, or (`publish` false) a draft only `test_users` reach.
    Outputs: `sid`, `webhook_url`, `revision` (the latest), `live_revision` (what callers get),
    `draft_revision` (None when there is no draft), `drift`."""

    sid: pulumi.Output[str]
    webhook_url: pulumi.Output[str]
    revision: pulumi.Output[int]
    live_revision: pulumi.Output[int]
    draft_revision: pulumi.Output[int | None]
    drift: pulumi.Output[str]

    def __init__(self, name: str, *, stack: str, friendly_name: pulumi.Input[str], template: pulumi.Input[str],
                 values: pulumi.Input[str], pins: pulumi.Input[list[str]], publish: bool = True,
                 test_users: pulumi.Input[list[str]] = (), pin_check_url: pulumi.Input[str] | None = None,
                 adopt_sid: str | None = None, opts: pulumi.ResourceOptions | None = None):
        props = {"stack": stack, "friendly_name": friendly_name, "template": template, "values": values,
                 "pins": pulumi.Output.secret(pins), "publish": publish, "test_users": test_users, "sid": None,
                 "webhook_url": None, "revision": None, "live_revision": None, "draft_revision": None, "drift": None}
        if pin_check_url is not None:
            props["pin_check_url"] = pin_check_url
        if adopt_sid:  # only then, so that the inputs of a flow callmask made stay as they were
            props.update(adopt_sid=adopt_sid, **dict.fromkeys(ADOPTION_OUTPUTS))
        secret_outputs = ["pins", "console_definition",
                          *(["test_users"] if isinstance(test_users, pulumi.Output) else [])]
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=secret_outputs))
        super().__init__(StudioFlowProvider(), name, props, opts)
