"""The dial-out line: one ComponentResource owning the flow, the number, the voice binding and, when set,
the spend alert."""

from __future__ import annotations

import pulumi

from callmask.flow_gate import check_flow
from callmask.flow_template import PINS, canonical_json, check_values
from callmask.providers.dialing_permissions import DialingPermissions
from callmask.providers.phone_number import PhoneNumber
from callmask.providers.studio_flow import StudioFlow
from callmask.providers.usage_trigger import SpendAlert
from callmask.providers.voice_binding import VoiceBinding
from callmask.settings import LineSettings


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
        check_values(template, set(values) | {PINS})
        check_flow(settings, template, "flow/conference.json")
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
        flow = StudioFlow(f"{name}-flow", stack=stack, friendly_name=friendly_name,
                          template=canonical_json(template), values=canonical_json(values),
                          pins=list(settings.pins), publish=settings.publish,
                          test_users=pulumi.Output.secret(users) if test_users_secret else users, opts=child)
        release = settings.release_number_on_destroy
        number = PhoneNumber(f"{name}-number", selection=settings.phone_number.as_input(),
                             friendly_name=friendly_name, release_on_destroy=release,
                             opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                                 retain_on_delete=not release)))
        binding = VoiceBinding(f"{name}-voice", phone_number_sid=number.sid, flow_sid=flow.id,
                               voice_url=flow.webhook_url, voice_before=number.voice_before, opts=child)
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
        if not settings.publish:
            pulumi.log.info(f"publish is false: a change becomes a draft revision for {len(users)} test user(s); "
                            "every other caller keeps the live revision (stack output liveRevision)", flow)
        self.register_outputs({"flow_sid": flow.sid, "webhook_url": flow.webhook_url,
                               "phone_number": number.phone_number, "phone_number_sid": number.sid,
                               "live_revision": flow.live_revision, "draft_revision": flow.draft_revision})
