"""A corpus of realistic Studio flows, voice and messaging, written as Studio exports them (every event
listed, offsets, conditions with friendly names), covering the widget library; each with executions
whose path through the flow is known."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callmask.studio.call_simulation import CallerInput

ALL_TRIGGER_EVENTS = ("incomingMessage", "incomingCall", "incomingConversationMessage", "incomingRequest",
                      "incomingParent")


def trigger(events: tuple[str, ...] = ALL_TRIGGER_EVENTS, **wired: str) -> dict[str, Any]:
    return widget("Trigger", "trigger", {event: wired.get(event) for event in events})


def widget(name: str, kind: str, events: dict[str, str | None], **properties: Any) -> dict[str, Any]:
    transitions = [{"event": event, **({"next": target} if target else {})} for event, target in events.items()]
    return {"name": name, "type": kind, "transitions": transitions, "properties": properties}


def split(name: str, subject: str, no_match: str | None, *branches: tuple[str | None, str, str]) -> dict[str, Any]:
    """A split; each branch is (next, condition type, value), tried in order."""
    transitions: list[dict[str, Any]] = [{"event": "noMatch", **({"next": no_match} if no_match else {})}]
    for target, kind, value in branches:
        transitions.append({"event": "match", **({"next": target} if target else {}), "conditions": [
            {"friendly_name": f"If value {kind} {value}", "arguments": [subject], "type": kind, "value": value}]})
    return {"name": name, "type": "split-based-on", "transitions": transitions, "properties": {"input": subject}}


def say(name: str, text: str, then: str | None = None, **properties: Any) -> dict[str, Any]:
    return widget(name, "say-play", {"audioComplete": then}, say=text, voice="Polly.Joanna", language="en-US",
                  loop=1, **properties)


def gather(name: str, prompt: str, keypress: str | None, timeout: str | None, speech: str | None = None,
           **properties: Any) -> dict[str, Any]:
    return widget(name, "gather-input-on-call", {"keypress": keypress, "speech": speech, "timeout": timeout},
                  say=prompt, timeout=5, finish_on_key="#", stop_gather=True, **properties)


def ask(name: str, body: str, reply: str | None, timeout: str | None, failure: str | None = None) -> dict[str, Any]:
    return widget(name, "send-and-wait-for-reply",
                  {"incomingMessage": reply, "timeout": timeout, "deliveryFailure": failure},
                  body=body, timeout="3600", **{"from": "{{flow.channel.address}}"})


def message(name: str, body: str, then: str | None = None) -> dict[str, Any]:
    return widget(name, "send-message", {"sent": then, "failed": None}, body=body,
                  to="{{contact.channel.address}}", **{"from": "{{flow.channel.address}}"})


def dial(name: str, to: str, completed: str | None = None, hangup: str | None = None) -> dict[str, Any]:
    return widget(name, "connect-call-to", {"callCompleted": completed, "hangup": hangup}, noun="number", to=to,
                  caller_id="{{contact.channel.address}}", timeout=30)


def definition(description: str, *states: dict[str, Any]) -> dict[str, Any]:
    for index, state in enumerate(states):
        state["properties"]["offset"] = {"x": (index % 3) * 300 - 300, "y": index * 180}
    return {"description": description, "states": list(states), "initial_state": "Trigger",
            "flags": {"allow_concurrent_calls": True}}


@dataclass
class Execution:
    path: list[str]  # the widgets visited, in order
    inputs: list[CallerInput | str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # further CallSimulator.run arguments


def keys(text: str) -> CallerInput:
    return CallerInput("keys", text)


def speech(text: str) -> CallerInput:
    return CallerInput("speech", text)


def reply(text: str) -> CallerInput:
    return CallerInput("reply", text)


CORPUS: dict[str, tuple[dict[str, Any], list[Execution]]] = {}


def entry(name: str, flow: dict[str, Any], *executions: Execution) -> None:
    CORPUS[name] = (flow, list(executions))


entry("ivr_menu", definition(
    "Main menu: sales, support, operator",
    trigger(incomingCall="main_menu"),
    gather("main_menu", "For sales press 1, for support press 2, to repeat press 9.", "route", "say_no_choice",
           number_of_digits=1),
    split("route", "{{widgets.main_menu.Digits}}", "say_no_choice",
          ("dial_sales", "equal_to", "1"), ("dial_support", "equal_to", "2"), ("main_menu", "equal_to", "9")),
    dial("dial_sales", "+14155550100", hangup=None),
    dial("dial_support", "+14155550101"),
    say("say_no_choice", "Sorry, we did not get that. Goodbye.")),
    Execution(["Trigger", "main_menu", "route", "dial_sales"], ["1"]),
    Execution(["Trigger", "main_menu", "route", "dial_support"], ["2"]),
    Execution(["Trigger", "main_menu", "route", "main_menu", "route", "dial_support"], ["9", "2"]),
    Execution(["Trigger", "main_menu", "route", "say_no_choice"], ["7"]),
    Execution(["Trigger", "main_menu", "say_no_choice"], []))

entry("voicemail_to_sms", definition(
    "After hours: take a voicemail, text its link to the on-call phone",
    trigger(incomingCall="greeting"),
    say("greeting", "Please leave a message after the tone.", "record"),
    widget("record", "record-voicemail", {"recordingComplete": "notify", "noAudio": "say_nothing",
                                          "hangup": "notify"},
           max_length=120, finish_on_key="#", play_beep="true", trim="trim-silence", transcribe=False, timeout=5),
    widget("notify", "send-message", {"sent": None, "failed": None}, to="+14155550199",
           body="Voicemail from {{trigger.call.From}}: {{widgets.record.RecordingUrl}}",
           **{"from": "{{flow.channel.address}}"}),
    say("say_nothing", "We did not hear anything. Goodbye.")),
    Execution(["Trigger", "greeting", "record", "notify"]),
    Execution(["Trigger", "greeting", "record", "say_nothing"], options={"outcomes": {"record": "noAudio"}}),
    Execution(["Trigger", "greeting", "record", "notify"], options={"hangup": True}))

entry("sms_survey", definition(
    "Two-question SMS survey",
    trigger(incomingMessage="q_recommend"),
    ask("q_recommend", "Would you recommend us? Reply YES or NO.", "check_recommend", "mark_no_reply"),
    split("check_recommend", "{{widgets.q_recommend.inbound.Body}}", "q_recommend",
          ("q_score", "matches_any_of", "yes,y,yeah"), ("say_sorry", "matches_any_of", "no,n")),
    ask("q_score", "From 1 to 10, how was it?", "check_score", "mark_no_reply"),
    split("check_score", "{{widgets.q_score.inbound.Body}}", "thanks",
          ("ask_followup", "less_than", "5")),
    message("ask_followup", "Sorry to hear it. A manager will call you."),
    message("say_sorry", "Thanks for telling us."),
    message("thanks", "Thank you!"),
    widget("mark_no_reply", "set-variables", {"next": None},
           variables=[{"key": "status", "value": "no_reply"}])),
    Execution(["Trigger", "q_recommend", "check_recommend", "q_score", "check_score", "thanks"],
              [reply("Yes"), reply("9")], {"trigger": "incomingMessage", "message": "hi"}),
    Execution(["Trigger", "q_recommend", "check_recommend", "q_score", "check_score", "ask_followup"],
              [reply(" y "), reply("3")], {"message": "hi"}),
    Execution(["Trigger", "q_recommend", "check_recommend", "say_sorry"], [reply("NO")], {"message": "hi"}),
    Execution(["Trigger", "q_recommend", "mark_no_reply"], [], {"message": "hi"}))

entry("appointment_reminder", definition(
    "REST-triggered reminder with confirm or cancel",
    trigger(incomingRequest="remind"),
    ask("remind", "Hi {{flow.data.name}}, see you {{flow.data.when}}. Reply C to confirm or X to cancel.",
        "answer", None, "log_failure"),
    split("answer", "{{widgets.remind.inbound.Body}}", "remind",
          ("confirm", "equal_to", "c"), ("cancel", "equal_to", "x")),
    widget("confirm", "make-http-request", {"success": "say_confirmed", "failed": "log_failure"},
           method="POST", content_type="application/json;charset=utf-8",
           url="https://example.com/appointments/{{flow.data.id}}/confirm", body="{\"status\": \"confirmed\"}"),
    widget("cancel", "make-http-request", {"success": "say_cancelled", "failed": "log_failure"},
           method="POST", content_type="application/x-www-form-urlencoded;charset=utf-8",
           url="https://example.com/appointments/{{flow.data.id}}/cancel", parameters=[]),
    message("say_confirmed", "Confirmed. See you {{flow.data.when}}."),
    message("say_cancelled", "Cancelled."),
    widget("log_failure", "run-function", {"success": None, "fail": None}, service_sid="ZS" + "1" * 32,
           environment_sid="ZE" + "1" * 32, function_sid="ZH" + "1" * 32, url="https://example.twil.io/log",
           parameters=[{"key": "id", "value": "{{flow.data.id}}"}])),
    Execution(["Trigger", "remind", "answer", "confirm", "say_confirmed"], [reply("C")],
              {"data": {"name": "Ada", "when": "Monday", "id": "42"}}),
    Execution(["Trigger", "remind", "answer", "cancel", "log_failure"], [reply("x")],
              {"data": {"id": "42"}, "outcomes": {"cancel": "failed"}}))

entry("outbound_voice_message", definition(
    "REST-triggered outbound call that reads a message, texts when nobody answers",
    trigger(incomingRequest="call_user"),
    widget("call_user", "make-outgoing-call-v2",
           {"answered": "play_message", "busy": "text_user", "noAnswer": "text_user", "failed": None},
           to="{{contact.channel.address}}", detect_answering_machine=False, record=False, timeout=60,
           **{"from": "{{flow.channel.address}}"}),
    say("play_message", "{{flow.data.message}}"),
    message("text_user", "We tried to call you: {{flow.data.message}}")),
    Execution(["Trigger", "call_user", "play_message"], options={"data": {"message": "Your order shipped."}}),
    Execution(["Trigger", "call_user", "text_user"], options={"outcomes": {"call_user": "noAnswer"}}))

entry("business_hours", definition(
    "Open hours from a Function, then the front desk or voicemail",
    trigger(incomingCall="get_time"),
    widget("get_time", "run-function", {"success": "check_hours", "fail": "dial_desk"},
           service_sid="ZS" + "2" * 32, environment_sid="ZE" + "2" * 32, function_sid="ZH" + "2" * 32,
           url="https://example.twil.io/now", parameters=[]),
    {"name": "check_hours", "type": "split-based-on", "properties": {"input": "{{widgets.get_time.parsed.time}}"},
     "transitions": [{"event": "noMatch", "next": "say_closed"},
                     {"event": "match", "next": "dial_desk", "conditions": [
                         {"friendly_name": "after opening", "arguments": ["{{widgets.get_time.parsed.time}}"],
                          "type": "is_after_time", "value": "09:00"},
                         {"friendly_name": "before closing", "arguments": ["{{widgets.get_time.parsed.time}}"],
                          "type": "is_before_time", "value": "17:30"}]}]},
    dial("dial_desk", "+14155550110"),
    say("say_closed", "We are closed. Please call back between nine and five thirty.")),
    Execution(["Trigger", "get_time", "check_hours", "dial_desk"],
              options={"outputs": {"get_time": {"parsed": {"time": "10:15"}}}}),
    Execution(["Trigger", "get_time", "check_hours", "say_closed"],
              options={"outputs": {"get_time": {"parsed": {"time": "18:05"}}}}),
    Execution(["Trigger", "get_time", "dial_desk"], options={"outcomes": {"get_time": "fail"}}))

entry("speech_router", definition(
    "Say what you need: billing goes to a queue, anything else to an agent",
    trigger(incomingCall="ask_reason"),
    gather("ask_reason", "In a few words, how can we help?", "ask_reason", "ask_reason", "route_speech",
           input="dtmf speech", speech_timeout="auto", speech_model="phone_call", language="en-US"),
    split("route_speech", "{{widgets.ask_reason.SpeechResult}}", "agent",
          ("billing_queue", "contains", "bill"), ("agent", "contains", "agent")),
    widget("billing_queue", "enqueue-call",
           {"callComplete": None, "failedToEnqueue": "agent", "callFailure": None},
           queue_name="billing", priority="0", timeout="3600"),
    dial("agent", "+14155550120")),
    Execution(["Trigger", "ask_reason", "route_speech", "billing_queue"], [speech("A question about my Bill")]),
    Execution(["Trigger", "ask_reason", "route_speech", "agent"], [speech("something else")]),
    Execution(["Trigger", "ask_reason", "route_speech", "billing_queue", "agent"], [speech("billing")],
              {"outcomes": {"billing_queue": "failedToEnqueue"}}))

entry("flex_voice", definition(
    "Voice to a Flex agent, with a fallback message",
    trigger(incomingCall="welcome"),
    say("welcome", "Thanks for calling. Connecting you to an agent.", "to_flex"),
    widget("to_flex", "send-to-flex", {"callComplete": None, "failedToEnqueue": "say_busy", "callFailure": "say_busy"},
           workflow="WW" + "3" * 32, channel="TC" + "3" * 32,
           attributes="{\"type\": \"inbound\", \"name\": \"{{trigger.call.From}}\"}", priority="0", timeout="3600"),
    say("say_busy", "All agents are busy. Please try again later.")),
    Execution(["Trigger", "welcome", "to_flex"]),
    Execution(["Trigger", "welcome", "to_flex", "say_busy"], options={"outcomes": {"to_flex": "callFailure"}}))

entry("conversations_to_flex", definition(
    "Conversations (WhatsApp, webchat) to Flex with a language tag",
    trigger(incomingConversationMessage="tag_language"),
    widget("tag_language", "set-variables", {"next": "to_flex"},
           variables=[{"key": "language", "value": "{% if trigger.conversation.Body contains 'hola' %}es"
                                                   "{% else %}en{% endif %}"}]),
    widget("to_flex", "send-to-flex", {"callComplete": None, "failedToEnqueue": None, "callFailure": None},
           workflow="WW" + "4" * 32, channel="TC" + "4" * 32,
           attributes="{\"language\": \"{{flow.variables.language}}\"}")),
    Execution(["Trigger", "tag_language", "to_flex"],
              options={"trigger": "incomingConversationMessage", "message": "hola"}))

entry("pay_by_phone", definition(
    "Pay a bill by phone",
    trigger(incomingCall="get_account"),
    gather("get_account", "Enter your account number, then press pound.", "take_payment", "say_goodbye",
           number_of_digits=8),
    widget("take_payment", "capture-payments",
           {"success": "say_paid", "maxFailedAttempts": "say_failed", "providerError": "say_failed",
            "payInterrupted": "say_failed", "hangup": None, "validationError": "say_failed"},
           payment_connector="Stripe_Connector", payment_amount="{{flow.data.amount}}", currency="usd",
           description="Account {{widgets.get_account.Digits}}", valid_card_types=["visa", "master-card"],
           security_code=True, postal_code="true", payment_method="credit-card", timeout=5, max_attempts=2),
    say("say_paid", "Thank you, your payment went through."),
    say("say_failed", "We could not take the payment."),
    say("say_goodbye", "Goodbye.")),
    Execution(["Trigger", "get_account", "take_payment", "say_paid"], ["12345678"]),
    Execution(["Trigger", "get_account", "take_payment", "say_failed"], ["12345678"],
              {"outcomes": {"take_payment": "providerError"}}),
    Execution(["Trigger", "get_account", "take_payment"], ["12345678"], {"hangup": True}))

entry("subflow_parent", definition(
    "Identify the caller in a shared subflow, then route",
    trigger(incomingCall="identify"),
    widget("identify", "run-subflow", {"completed": "greet", "failed": "say_error"},
           flow_sid="FW" + "5" * 32, flow_revision="LatestPublished",
           parameters=[{"key": "caller", "value": "{{trigger.call.From}}"}]),
    say("greet", "Welcome back, {{widgets.identify.name}}."),
    say("say_error", "Sorry, something went wrong.")),
    Execution(["Trigger", "identify", "greet"], options={"outputs": {"identify": {"name": "Ada"}}}),
    Execution(["Trigger", "identify", "say_error"], options={"outcomes": {"identify": "failed"}}))

entry("subflow_child", definition(
    "Subflow: look the caller up, hand the name back",
    trigger(incomingParent="lookup"),
    widget("lookup", "make-http-request", {"success": "known", "failed": None}, method="GET",
           content_type="application/x-www-form-urlencoded;charset=utf-8",
           url="https://example.com/customers?phone={{flow.data.caller | url_encode}}"),
    split("known", "{{widgets.lookup.parsed.name}}", None, (None, "is_not_blank", ""))),
    Execution(["Trigger", "lookup", "known"], options={"trigger": "incomingParent",
                                                       "data": {"caller": "+14155550123"},
                                                       "outputs": {"lookup": {"parsed": {"name": "Ada"}}}}))

entry("pin_outside_studio", definition(
    "PIN checked by an external TwiML app so it never enters Studio's logs",
    trigger(incomingCall="check_pin_outside"),
    widget("check_pin_outside", "add-twiml-redirect", {"return": "route", "timeout": "say_error", "fail": "say_error"},
           url="https://example.com/pin-check", method="POST", timeout="14400"),
    split("route", "{{widgets.check_pin_outside.auth}}", "say_denied", ("dial_out", "equal_to", "ok")),
    dial("dial_out", "+{{widgets.check_pin_outside.destination}}"),
    say("say_denied", "Access denied."),
    say("say_error", "Sorry, something went wrong.")),
    Execution(["Trigger", "check_pin_outside", "route", "dial_out"],
              options={"outputs": {"check_pin_outside": {"auth": "ok", "destination": "14155550123"}}}),
    Execution(["Trigger", "check_pin_outside", "route", "say_denied"],
              options={"outputs": {"check_pin_outside": {"auth": "denied"}}}))

entry("vip_function", definition(
    "VIP callers skip the queue (a Function decides)",
    trigger(incomingCall="is_vip"),
    widget("is_vip", "run-function", {"success": "vip_split", "fail": "queue"}, service_sid="ZS" + "6" * 32,
           environment_sid="ZE" + "6" * 32, function_sid="ZH" + "6" * 32, url="https://example.twil.io/vip",
           parameters=[{"key": "from", "value": "{{trigger.call.From}}"}]),
    split("vip_split", "{{widgets.is_vip.parsed.vip}}", "queue", ("dial_vip", "equal_to", "true")),
    dial("dial_vip", "+14155550130"),
    widget("queue", "enqueue-call", {"callComplete": None, "failedToEnqueue": None, "callFailure": None},
           queue_name="general")),
    Execution(["Trigger", "is_vip", "vip_split", "dial_vip"], options={"outputs": {"is_vip": {"parsed": {"vip": True}}}}),
    Execution(["Trigger", "is_vip", "vip_split", "queue"], options={"outputs": {"is_vip": {"parsed": {"vip": False}}}}))

entry("recorded_transfer", definition(
    "Announce recording, record the bridged call, stop recording after",
    trigger(incomingCall="announce"),
    say("announce", "This call may be recorded.", "start_recording"),
    widget("start_recording", "record-call", {"success": "transfer", "failed": "transfer"},
           record_call=True, recording_channels="dual", trim="do-not-trim"),
    dial("transfer", "+14155550140", completed="stop_recording", hangup="stop_recording"),
    widget("stop_recording", "record-call", {"success": None, "failed": None}, record_call=False)),
    Execution(["Trigger", "announce", "start_recording", "transfer", "stop_recording"]))

entry("older_trigger", definition(
    "An older export: the trigger lists three events",
    trigger(("incomingMessage", "incomingCall", "incomingRequest"), incomingCall="hello"),
    say("hello", "Hello from an older flow.", play="https://example.com/chime.mp3")),
    Execution(["Trigger", "hello"]))

entry("punctuated_names", definition(
    "Widget names that differ only in punctuation",
    trigger(incomingCall="a-4"),
    say("a-4", "first", "a_4"),
    say("a_4", "second", "a.4"),
    say("a.4", "third")),
    Execution(["Trigger", "a-4", "a_4", "a.4"]))

entry("liquid_filters", definition(
    "Studio's Liquid with filters",
    trigger(incomingRequest="count"),
    widget("count", "set-variables", {"next": "shout"},
           variables=[{"key": "items", "value": "{{flow.data.items | split: ',' | size}}"},
                      {"key": "next_try", "value": "{{flow.data.tries | plus: 1}}"}]),
    message("shout", "HELLO {{flow.data.name | upcase}}: {{flow.variables.items}} items, "
                     "try {{flow.variables.next_try}}, data {{flow.data | to_json}}")),
    Execution(["Trigger", "count", "shout"], options={"data": {"name": "ada", "items": "a,b,c", "tries": "1"}}))

entry("retry_loop", definition(
    "Three tries to enter a five-digit code, counted in a variable",
    trigger(incomingCall="ask_code"),
    gather("ask_code", "Enter your five-digit code.", "check_code", "count_try", number_of_digits=5),
    split("check_code", "{{widgets.ask_code.Digits}}", "count_try", ("say_ok", "regex", "\\d{5}")),
    widget("count_try", "set-variables", {"next": "too_many"},
           variables=[{"key": "tries", "value": "{{flow.variables.tries | plus: 1}}"}]),
    split("too_many", "{{flow.variables.tries}}", "ask_code", ("say_bye", "greater_than", "2")),
    say("say_ok", "Thank you."),
    say("say_bye", "Too many tries. Goodbye.")),
    Execution(["Trigger", "ask_code", "check_code", "say_ok"], ["12345"]),
    Execution(["Trigger", "ask_code", "count_try", "too_many", "ask_code", "count_try", "too_many",
               "ask_code", "count_try", "too_many", "say_bye"], []))

entry("whatsapp_menu", definition(
    "WhatsApp menu by number or word",
    trigger(incomingMessage="menu"),
    ask("menu", "Reply 1 for opening hours, 2 for address, or AGENT.", "pick", None),
    split("pick", "{{widgets.menu.inbound.Body}}", "menu",
          ("hours", "matches_any_of", "1, hours"), ("address", "regex", "2|addr.*"),
          ("agent_handoff", "starts_with", "agent")),
    message("hours", "We are open 9 to 5."),
    message("address", "1 Main St."),
    widget("agent_handoff", "send-to-flex", {"callComplete": None, "failedToEnqueue": None, "callFailure": None},
           workflow="WW" + "7" * 32, channel="TC" + "7" * 32)),
    Execution(["Trigger", "menu", "pick", "hours"], [reply("HOURS")], {"message": "hi"}),
    Execution(["Trigger", "menu", "pick", "address"], [reply("Address please")], {"message": "hi"}),
    Execution(["Trigger", "menu", "pick", "agent_handoff"], [reply("Agent now")], {"message": "hi"}),
    Execution(["Trigger", "menu", "pick", "menu", "pick", "hours"], [reply("what?"), reply("1")], {"message": "hi"}))

entry("media_stream", definition(
    "Stream the call's audio to a transcriber, then connect",
    trigger(incomingCall="stream"),
    widget("stream", "fork-stream", {"next": "connect"}, stream_action="start", stream_name="live",
           stream_url="wss://example.com/audio", stream_track="both_tracks"),
    dial("connect", "+14155550150")),
    Execution(["Trigger", "stream", "connect"]))

entry("date_campaign", definition(
    "A seasonal greeting chosen by date",
    trigger(incomingRequest="season"),
    {"name": "season", "type": "split-based-on", "properties": {"input": "{{flow.data.date}}"},
     "transitions": [{"event": "noMatch", "next": "regular"},
                     {"event": "match", "next": "holiday", "conditions": [
                         {"friendly_name": "holidays", "arguments": ["{{flow.data.date}}"], "type": "is_after_date",
                          "value": "2026-12-20"}]}]},
    message("holiday", "Happy holidays!"),
    message("regular", "Hello!")),
    Execution(["Trigger", "season", "holiday"], options={"data": {"date": "2026-12-24"}}),
    Execution(["Trigger", "season", "regular"], options={"data": {"date": "2026-06-01"}}))
