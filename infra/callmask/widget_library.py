"""Studio's widget library as the flow tools know it: each widget type with its events, in the order
Studio's exports list them, and the split conditions. Validation, simulation and diagrams read it here."""

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
    "make-outgoing-call-v1", "create-chat-channel", "add-member-to-chat-channel", "update-sync-object",
    "create-task", "understand", "connect-virtual-agent", "connect-virtual-agent-v2", "run-function-v2",
}
WIDGET_TYPES = set(WIDGET_EVENTS) | OTHER_TYPES

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
