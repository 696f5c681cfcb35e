"""A simulated call as the caller would tell it: one line per widget, then the outcome."""

from __future__ import annotations

from callmask.studio import call_simulation

TRIGGER_TEXT = {"incomingCall": "incoming call", "incomingMessage": "incoming message",
                "incomingConversationMessage": "incoming conversation message",
                "incomingRequest": "execution started by a REST API request",
                "incomingParent": "started as a subflow by a parent flow"}


def transcript(result: call_simulation.CallResult, stopped: str | None = None) -> str:
    lines = [line for step in result.steps for line in step_lines(step, result)]
    lines += [f"not used: {given.kind} “{given.value}” (no widget waited for it)" for given in result.unused]
    if stopped:
        lines.append(f"cannot simulate: {stopped}")
    else:
        lines.append(f"outcome: {result.outcome}" + (f" (dialed {result.dialed})" if result.dialed else ""))
    return "\n".join(lines)


def step_lines(step: call_simulation.Step, result: call_simulation.CallResult) -> list[str]:
    prefix, event = f"[{step.widget}]", f" -> {step.event}"
    lines = [f"{prefix} caller hears: “{step.say}”"] if step.say else []
    lines += [f"{prefix} caller hears audio {step.play}"] if step.play else []
    if step.message:
        sent = event if step.type == "send-message" else ""
        lines.append(f"{prefix} sends to {step.message['to']}: “{step.message['body']}”{sent}")
    if step.event is None:
        lines.append(f"{prefix} {step.note}" if step.note else f"{prefix} caller hangs up")
    elif step.type == "trigger":
        lines.append(f"{prefix} {TRIGGER_TEXT.get(step.event, step.event)}")
    elif step.digits is not None:
        lines.append(f"{prefix} gathered: {step.digits or 'nothing'}{event}")
        if step.type == "add-twiml-redirect" and step.note:  # what the TwiML URL sent back to the flow
            lines.append(f"{prefix} {step.note}")
    elif step.speech is not None:
        lines.append(f"{prefix} heard: “{step.speech}”{event}")
    elif step.reply is not None or step.type == "send-and-wait-for-reply":
        lines.append(f"{prefix} reply: “{step.reply}”{event}" if step.reply is not None else f"{prefix} no reply{event}")
    elif step.dial:
        callee = "" if result.outcome in ("connected", "hangup") else f" ({result.outcome.replace('_', ' ')})"
        lines.append(f"{prefix} dials {step.dial['to']} with caller ID {step.dial['caller_id']}{callee}{event}")
    elif step.type == "split-based-on":
        lines.append(f"{prefix} branch: {step.event}" + (f" ({step.note})" if step.note else ""))
    elif step.type not in ("say-play", "send-message"):
        lines.append(f"{prefix} {step.type}{event}" + (f" ({step.note})" if step.note else ""))
    return lines
