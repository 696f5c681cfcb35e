"""Studio's widget library as the flow tools know it: each widget type with its events, in the order
Studio's exports list them, the JSON type of each property as Studio writes it, the types Twilio has
retired, and the split conditions. Rendering, validation, simulation and diagrams read it here."""

from __future__ import annotations

TRIGGER_EVENTS = ("incomingMessage", "incomingCall", "incomingConversationMessage", "incomingRequest",
                  "incomingParent")

# Widgets whose events Twilio's widget pages and Studio's exports show in full.
WIDGET_EVENTS: dict[str, tuple[str, ...]] = {
    "trigger": TRIGGER_EVENTS,
    "say-play": ("audioComplete",),
    "gather-input-on-call": ("keypress", "speech", "timeout"),
    "split-based-on": ("noMatch", "match"),
    "set-variables": ("next",),
    "connect-call-to": ("callCompleted", "hangup"),
    "run-function": ("success", "fail"),
    "make-http-request": ("success", "failed"),
    "add-twiml-redirect": ("return", "timeout", "fail"),
    "run-subflow": ("completed", "failed"),
    "make-outgoing-call-v2": ("answered", "busy", "noAnswer", "failed"),
    "record-voicemail": ("recordingComplete", "noAudio", "hangup"),
    "send-message": ("sent", "failed"),
    "send-and-wait-for-reply": ("incomingMessage", "timeout", "deliveryFailure"),
    "send-to-flex": ("callComplete", "failedToEnqueue", "callFailure"),
    "enqueue-call": ("callComplete", "failedToEnqueue", "callFailure"),
    "record-call": ("success", "failed"),
    "capture-payments": ("success", "maxFailedAttempts", "providerError", "payInterrupted", "hangup",
                         "validationError"),
    "fork-stream": ("next",),
}
# Event lists read from a widget page's labels, not seen in an export: another event there is doubtful, not wrong.
UNCONFIRMED_EVENT_LISTS = {"capture-payments"}

# Events a widget may leave out of its transitions: subflow and conversation triggers (older exports
# lack them) and a split's match branches.
OPTIONAL_EVENTS = {"incomingParent", "incomingConversationMessage", "match"}

# Types Studio has (or had) whose events the tools do not know: accepted, not event-checked, and simulated
# only with an outcome the user supplies.
OTHER_TYPES = {
    "make-outgoing-call-v1", "update-sync-object",
    "create-task", "understand", "connect-virtual-agent", "connect-virtual-agent-v2", "run-function-v2",
}
# Types Twilio has retired with the product behind them: (the year, what replaced it). A flow that still
# holds one is read and drawn (the tools work around it), with a warning: the widget no longer runs.
RETIRED_TYPES: dict[str, tuple[int, str]] = {
    "send-to-auto-pilot": (2023, "Autopilot was retired; use Connect Virtual Agent (connect-virtual-agent-v2) "
                                 "with Dialogflow CX, or a TwiML Redirect to your own bot"),
    "create-chat-channel": (2022, "Programmable Chat was retired; use Conversations (send-to-flex or the "
                                  "Conversations API)"),
    "add-member-to-chat-channel": (2022, "Programmable Chat was retired; use Conversations"),
}
WIDGET_TYPES = set(WIDGET_EVENTS) | OTHER_TYPES | set(RETIRED_TYPES)

# The JSON type Studio writes for each property, as its exports show them: numbers as numbers in most
# widgets, but as text where Studio keeps text (a TwiML Redirect's, a reply's or a queue's `timeout`, a
# priority), and some flags as text ("true"). `render` fills placeholders with these types; `validate`
# names a property of another type. Properties not listed (offsets, lists, SIDs) are not checked here.
PROPERTY_TYPES: dict[str, dict[str, type]] = {
    "say-play": {"say": str, "play": str, "voice": str, "language": str, "loop": int, "digits": str},
    "gather-input-on-call": {"say": str, "play": str, "voice": str, "language": str, "loop": int, "timeout": int,
                             "finish_on_key": str, "number_of_digits": int, "stop_gather": bool,
                             "gather_language": str, "hints": str, "profanity_filter": str, "speech_timeout": str,
                             "speech_model": str, "input": str},
    "split-based-on": {"input": str},
    "connect-call-to": {"noun": str, "to": str, "caller_id": str, "timeout": int, "record": bool,
                        "sip_endpoint": str, "sip_username": str, "sip_password": str},
    "add-twiml-redirect": {"url": str, "method": str, "timeout": str},
    "send-message": {"from": str, "to": str, "body": str, "media_url": str, "service": str, "channel": str},
    "send-and-wait-for-reply": {"from": str, "body": str, "timeout": str, "media_url": str, "service": str,
                                "channel": str},
    "make-http-request": {"url": str, "method": str, "content_type": str, "body": str},
    "run-function": {"url": str, "service_sid": str, "environment_sid": str, "function_sid": str},
    "run-subflow": {"flow_sid": str, "flow_revision": str},
    "make-outgoing-call-v2": {"to": str, "from": str, "timeout": int, "record": bool,
                              "detect_answering_machine": bool},
    "record-voicemail": {"max_length": int, "timeout": int, "finish_on_key": str, "play_beep": str, "trim": str,
                         "transcribe": bool},
    "record-call": {"record_call": bool, "recording_channels": str, "trim": str},
    "enqueue-call": {"queue_name": str, "priority": str, "timeout": str},
    "send-to-flex": {"workflow": str, "channel": str, "attributes": str, "priority": str, "timeout": str},
    "capture-payments": {"timeout": int, "max_attempts": int, "security_code": bool, "postal_code": str,
                         "payment_method": str, "payment_amount": str, "currency": str, "description": str,
                         "payment_connector": str},
    "fork-stream": {"stream_action": str, "stream_name": str, "stream_track": str, "stream_url": str},
}
JSON_TYPE_NAMES = {str: "text", int: "a number", bool: "true or false"}


def as_studio_type(value: object, kind: type) -> object:
    """A value in the type Studio writes: a number as text where Studio keeps text, digits as a number where
    it keeps a number; anything else (Liquid, a value that cannot be converted) as it is."""
    if kind is str and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind is int and isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value


def has_studio_type(value: object, kind: type) -> bool:
    """Whether Studio would write this value for a property of this type (Liquid stands for any type)."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return True
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)

# Widgets whose event someone else decides (a Function, a web server, an agent, the callee, the carrier):
# the simulator takes the first event unless told otherwise.
EXTERNAL_OUTCOME_TYPES = {
    "run-function", "make-http-request", "add-twiml-redirect", "run-subflow", "make-outgoing-call-v2",
    "send-message", "send-to-flex", "enqueue-call", "record-call", "capture-payments", "fork-stream",
    "record-voicemail",
}

CONDITION_TYPES = {
    "equal_to", "not_equal_to", "matches_any_of", "does_not_match_any_of", "is_blank", "is_not_blank", "regex",
    "contains", "does_not_contain", "starts_with", "does_not_start_with", "less_than", "greater_than",
    "is_before_time", "is_after_time", "is_before_date", "is_after_date",
}
