"""The dial-out line: one ComponentResource owning the flow, the number, the voice binding and, when set,
the spend alert and the PIN-check Function with its PIN guard (a Sync Map of counters and the API key that
reaches it)."""

from __future__ import annotations

import json
import re

import pulumi

from callmask.config.settings import LineSettings
from callmask.function import pin_function
from callmask.line.flow_gate import check_flow
from callmask.providers.api_key import ApiKey
from callmask.providers.dialing_permissions import DialingPermissions
from callmask.providers.phone_number import PhoneNumber
from callmask.providers.pin_salt import PinSalt
from callmask.providers.serverless import (
    EnvironmentVariables,
    FunctionVersion,
    ServerlessBuild,
    ServerlessDeployment,
    ServerlessEnvironment,
    ServerlessFunction,
    ServerlessService,
)
from callmask.providers.studio_flow import StudioFlow
from callmask.providers.sync import SyncMap, SyncService
from callmask.providers.usage_trigger import SpendAlert
from callmask.providers.voice_binding import VoiceBinding
from callmask.studio.flow_template import canonical_json, flow_file


class DialOutLine(pulumi.ComponentResource):
    flow_sid: pulumi.Output[str]
    webhook_url: pulumi.Output[str]
    phone_number: pulumi.Output[str]
    phone_number_sid: pulumi.Output[str]
    live_revision: pulumi.Output[int]
    draft_revision: pulumi.Output[int | None]

    def __init__(self, name: str, *, stack: str, settings: LineSettings, template: dict,
                 test_users_secret: bool = False, opts: pulumi.ResourceOptions | None = None):
        values = settings.flow_values()
        # Before anything is registered: the placeholders match, and the flow passes the gate.
        check_flow(settings, template, f"flow/{flow_file(settings.pin_check).name}")
        super().__init__("callmask:index:DialOutLine", name, None, opts)
        friendly_name = f"callmask-{stack}"
        users = list(settings.test_users)
        child = pulumi.ResourceOptions(parent=self)

        if settings.dialing_permissions != "off":
            # First: a line its account's dialing permissions would block creates nothing.
            permissions = DialingPermissions(
                f"{name}-dialing-permissions", stack=stack, mode=settings.dialing_permissions,
                countries=list(settings.allowed_countries), number_types=list(settings.allowed_number_types),
                opts=child)
            permissions.warnings.apply(lambda warnings: [pulumi.log.warn(w, permissions) for w in warnings or []])
            permissions.drift.apply(lambda drift: drift and pulumi.log.warn(f"dialing permissions {drift}", permissions))
            child = pulumi.ResourceOptions(parent=self, depends_on=[permissions])
        release = settings.release_number_on_destroy
        number = PhoneNumber(f"{name}-number", selection=settings.phone_number.as_input(),
                             friendly_name=friendly_name, release_on_destroy=release,
                             opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                                 retain_on_delete=not release)))
        # The number first: a purchase Twilio refuses at `up` leaves nothing else behind.
        child = pulumi.ResourceOptions(parent=self, depends_on=[*(child.depends_on or []), number])
        flow_options, pin_check_url = child, None
        if settings.checks_pin_in_function:
            pin_check_url, deployed = self.pin_check_function(name, stack, settings, child)
            flow_options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=deployed))
        flow = StudioFlow(f"{name}-flow", stack=stack, friendly_name=friendly_name,
                          template=canonical_json(template), values=canonical_json(values),
                          pins=[] if settings.checks_pin_in_function else list(settings.pins),
                          pin_check_url=pin_check_url, publish=settings.publish, adopt_sid=settings.flow_sid,
                          test_users=pulumi.Output.secret(users) if test_users_secret else users, opts=flow_options)
        binding = VoiceBinding(f"{name}-voice", phone_number_sid=number.sid, flow_sid=flow.id,
                               voice_url=flow.webhook_url, voice_before=number.voice_before,
                               adopted=settings.flow_sid is not None, opts=child)
        binding.previous_known.apply(lambda known: known is False and pulumi.log.warn(
            "The number's voice settings from before callmask are not known (they pointed at a callmask flow or "
            "a deleted one): destroying this stack will clear its voice URL instead of restoring it.", binding))

        if alert := settings.spend_alert:
            SpendAlert(f"{name}-spend-alert", stack=stack, daily_usd=alert.daily_usd, callback_url=alert.callback_url,
                       opts=child)

        self.flow_sid = flow.sid
        self.webhook_url = flow.webhook_url
        self.phone_number = number.phone_number
        self.phone_number_sid = number.sid
        self.live_revision, self.draft_revision = flow.live_revision, flow.draft_revision
        if settings.pin_check == "studio" and pulumi.runtime.is_dry_run():
            unused = settings.pin_guard.function_only
            said = pulumi.log.warn if unused else pulumi.log.info
            said(f"pinGuard: with pinCheck studio a caller has {settings.pin_guard.attempts_per_call} PIN attempt(s) "
                 "per call and may call again without limit; lockouts per caller and alerts need pinCheck function "
                 f"(docs/security.md){'; not in effect: pinGuard.' + ', pinGuard.'.join(unused) if unused else ''}",
                 self)
        if not settings.publish and pulumi.runtime.is_dry_run():
            # Said once, by the preview (`up` runs one first), and only of a flow that exists: its id is known
            # then, while a new flow's first definition is published whatever publish says.
            flow.id.apply(lambda _: pulumi.log.info(
                f"publish is false: a change becomes a draft revision for {len(users)} test user(s); every other "
                "caller keeps the live revision (stack output liveRevision)", flow))
        self.pin_check_url = pin_check_url
        self.register_outputs({"flow_sid": flow.sid, "webhook_url": flow.webhook_url,
                               "phone_number": number.phone_number, "phone_number_sid": number.sid,
                               "live_revision": flow.live_revision, "draft_revision": flow.draft_revision})

    def pin_check_function(self, name: str, stack: str, settings: LineSettings, child: pulumi.ResourceOptions
                           ) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
        """The Function that checks the PIN, deployed and configured; the flow (which depends on what this
        returns) points at it only once it answers. Everything in the Service goes with the Service."""
        salt = PinSalt(f"{name}-pin-salt", stack=stack, opts=child).salt
        service = ServerlessService(f"{name}-pin-service", unique_name=service_name(stack),
                                    friendly_name=f"callmask {stack}: PIN check", opts=child)
        inside = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(deleted_with=service))
        environment = ServerlessEnvironment(f"{name}-pin-environment", service_sid=service.sid, unique_name="live",
                                            opts=inside)
        function = ServerlessFunction(f"{name}-pin-function", service_sid=service.sid,
                                      friendly_name=pin_function.FUNCTION_PATH.lstrip("/"), opts=inside)
        labeled = settings.labeled_pins()
        version = FunctionVersion(f"{name}-pin-code", service_sid=service.sid, function_sid=function.sid,
                                  path=pin_function.FUNCTION_PATH, visibility="protected", source=pin_function.source(),
                                  values=canonical_json({**settings.function_values(), "stack": stack}),
                                  labels=list(labeled), pins=labeled, salt=salt, opts=inside)
        build = ServerlessBuild(f"{name}-pin-build", service_sid=service.sid, function_versions=[version.sid],
                                dependencies=json.dumps(pin_function.build_dependencies()),
                                runtime=pin_function.RUNTIME, opts=inside)
        variables = EnvironmentVariables(f"{name}-pin-variables", service_sid=service.sid,
                                         environment_sid=environment.sid,
                                         variables=pulumi.Output.all(salt, self.pin_guard(name, stack, settings, child))
                                         .apply(lambda made: {pin_function.SALT_VARIABLE: made[0], **made[1]}),
                                         opts=inside)
        deployment = ServerlessDeployment(f"{name}-pin-deployment", service_sid=service.sid,
                                          environment_sid=environment.sid, build_sid=build.sid, opts=inside)
        for resource in (service, deployment, variables):
            resource.drift.apply(lambda drift, resource=resource: drift and pulumi.log.warn(drift, resource))
        url = environment.domain_name.apply(lambda domain: f"https://{domain}{pin_function.FUNCTION_PATH}")
        return url, [deployment, variables]

    @staticmethod
    def pin_guard(name: str, stack: str, settings: LineSettings, child: pulumi.ResourceOptions
                  ) -> pulumi.Output[dict[str, str]]:
        """The PIN guard's Sync Map and the API key the Function reaches it with: the Function's variables
        that name them (none when pinGuard.enabled is false)."""
        if not settings.guards_callers:
            return pulumi.Output.from_input({})
        label = f"callmask-{stack} PIN guard"
        key = ApiKey(f"{name}-guard-key", friendly_name=label, opts=child)
        sync = SyncService(f"{name}-guard-sync", friendly_name=label, opts=child)
        sync_map = SyncMap(f"{name}-guard-map", service_sid=sync.sid,
                           opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(deleted_with=sync)))
        sync.drift.apply(lambda drift: drift and pulumi.log.warn(drift, sync))
        alert = {pin_function.ALERT_VARIABLE: settings.pin_guard.alert_url} if settings.pin_guard.alert_url else {}
        return pulumi.Output.all(sync.sid, sync_map.sid, key.sid, key.secret).apply(
            lambda made: pin_function.guard_variables(*made) | alert)


def service_name(stack: str) -> str:
    """The Service's unique name (part of its domain): callmask-<stack>, letters, digits and '-' only."""
    return ("callmask-" + re.sub(r"[^a-z0-9]+", "-", stack.lower())).strip("-")[:50]
