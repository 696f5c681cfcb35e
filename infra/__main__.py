"""The callmask Pulumi program: stack config -> typed settings -> the dial-out line -> stack outputs."""

import pulumi

from callmask.config.settings import SettingsError, parse_settings
from callmask.config.stack_config import StackFileError, from_engine, is_secret
from callmask.line.component import DialOutLine
from callmask.line.flow_gate import FlowRefused
from callmask.studio.flow_template import TemplateError, flow_file, load_template

try:
    settings = parse_settings(*from_engine(pulumi.get_stack()))
    template = load_template(flow_file(settings.pin_check))
    line = DialOutLine("line", stack=pulumi.get_stack(), settings=settings, template=template,
                       test_users_secret=is_secret("testUsers"))
except (SettingsError, StackFileError, TemplateError, FlowRefused) as error:
    raise pulumi.RunError(str(error)) from None

pulumi.export("flowSid", line.flow_sid)
pulumi.export("webhookUrl", line.webhook_url)
pulumi.export("phoneNumber", line.phone_number)
pulumi.export("phoneNumberSid", line.phone_number_sid)
pulumi.export("liveRevision", line.live_revision)
if settings.checks_pin_in_function:
    pulumi.export("pinCheckUrl", line.pin_check_url)
if not settings.publish:  # a stack that publishes makes no drafts (one saved in the Console is drift)
    pulumi.export("draftRevision", line.draft_revision)
