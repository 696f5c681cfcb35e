"""`callmask`: render, validate, simulate, draw and diff the call flow offline, with no credentials; read a
deployed stack's calls, account and revisions from Twilio.

PIN values are never printed unless --reveal is given (and never by the commands that read Twilio).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from callmask.cli import flow_commands, stack_commands
from callmask.config.settings import SettingsError
from callmask.config.stack_config import StackFileError
from callmask.line.flow_gate import FlowRefused
from callmask.operations.command_flow import PINS_VARIABLE, CommandError
from callmask.operations.deployed_stack import StackUnreadable
from callmask.studio import call_simulation
from callmask.studio.call_transcript import TRIGGER_TEXT
from callmask.studio.flow_template import TemplateError


class PackageVersion(argparse.Action):
    """--version: the installed package's version, read only when asked for (loading importlib.metadata
    would add some 40 ms to every command)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **_):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import version

        print(f"callmask {version('callmask')}")
        parser.exit()


def project_dir_of(start: Path) -> Path:
    """The project the command runs in: the nearest folder with a Pulumi.yaml, as `pulumi` finds it."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").exists():
            return folder
    raise CommandError(f"no Pulumi.yaml in {start} or any folder above it: run callmask inside the project "
                       "(or give a rendered flow FILE instead of --stack)")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", help="stack name: reads Pulumi.NAME.yaml with the defaults in Pulumi.yaml")
    common.add_argument("--pins", help=f"comma-separated PINs to render with (or set {PINS_VARIABLE})")
    common.add_argument("--reveal", action="store_true", help="print PIN values instead of masking them")
    common.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)

    top = argparse.ArgumentParser(prog="callmask", description=" ".join(__doc__.split("\n\n")[0].split()))
    top.add_argument("--version", action=PackageVersion)
    commands = top.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", parents=[common], help="print the Studio definition a stack deploys")
    validate = commands.add_parser("validate", parents=[common], help="check a flow; exit 1 with one line per problem")
    simulate = commands.add_parser("simulate", parents=[common], help="walk one call through the flow")
    diagram = commands.add_parser("diagram", parents=[common], help="draw the flow (Mermaid or SVG)")
    for sub in (render, validate, simulate, diagram):
        sub.add_argument("file", nargs="?", help="a rendered flow definition (or, with --stack, a template)")
    validate.add_argument("--dial-out", action="store_true",
                          help="also apply the dial-out rules (PIN gate, checked destinations, PINs only in the PIN "
                               "check) to a flow FILE, with the PINs from --pins; a --stack flow always gets them")
    simulate.add_argument("--press", action="append", dest="inputs", metavar="KEYS",
                          type=lambda keys: call_simulation.CallerInput("keys", keys),
                          help="what the caller presses at the next gather, e.g. 24681357# (repeat per gather)")
    simulate.add_argument("--speak", action="append", dest="inputs", metavar="TEXT",
                          type=lambda text: call_simulation.CallerInput("speech", text),
                          help="what the caller says at the next gather instead of pressing keys")
    simulate.add_argument("--reply", action="append", dest="inputs", metavar="TEXT",
                          type=lambda text: call_simulation.CallerInput("reply", text),
                          help="the sender's reply at the next send-and-wait-for-reply (none: it times out)")
    simulate.add_argument("--trigger", choices=TRIGGER_TEXT,
                          help="what starts the execution: incomingCall (the default when the flow wires it), "
                               "incomingMessage, incomingConversationMessage, incomingRequest or incomingParent")
    simulate.add_argument("--message", default="", metavar="TEXT",
                          help="the body of the incoming message (with --trigger incomingMessage)")
    simulate.add_argument("--data", action="append", metavar="KEY=VALUE",
                          help="a flow.data parameter of a REST API request or parent flow (repeat)")
    simulate.add_argument("--caller", default=call_simulation.DEFAULT_CALLER, metavar="NUMBER",
                          help=f"the caller's or sender's number (default {call_simulation.DEFAULT_CALLER})")
    simulate.add_argument("--outcome", action="append", metavar="WIDGET=EVENT",
                          help="the event a widget that others decide ends with, e.g. lookup=fail or "
                               "subflow=failed (default: its first event, such as success)")
    simulate.add_argument("--output", action="append", metavar="WIDGET.KEY=VALUE",
                          help="a value that widget returns, e.g. lookup.parsed.open=true (JSON values parsed)")
    simulate.add_argument("--dial-status", default="completed", choices=call_simulation.DIAL_STATUSES,
                          help="what the dialed party does (Twilio's DialCallStatus): completed (answered, the "
                               "default), busy, no-answer, failed or canceled; the outcome says which")
    simulate.add_argument("--hangup", action="store_true",
                          help="the caller hangs up instead of waiting once the presses run out")
    simulate.add_argument("--json", action="store_true", help="machine-readable steps and outcome")
    simulate.add_argument("--locked", action="store_true",
                          help="the caller starts out locked out by the PIN guard (pinCheck function)")
    diagram.add_argument("--format", choices=("mermaid", "svg"), default="mermaid",
                         help="Mermaid text (renders in GitHub Markdown, the default) or an SVG picture")
    diff = commands.add_parser("diff", parents=[common], help="Markdown review of a flow change")
    diff.add_argument("files", nargs="*", metavar="OLD NEW", help="two flow files (or, with --stack, templates)")
    diff.add_argument("--base", metavar="GIT_REF", help="compare flow/ at GIT_REF with the working tree")
    diff.add_argument("--deployed", action="store_true",
                      help="with --stack: the draft only test users reach against the revision every caller gets, "
                           "read from Twilio with the stack's credentials")
    simulate.add_argument("--deployed", choices=("published", "draft"),
                          help="with --stack: play the flow deployed on Twilio (the published revision, or the latest "
                               "one, which test users get) instead of rendering it")
    audit = commands.add_parser("calls", help="the stack's calls from Twilio: caller, PIN, destination, outcome")
    audit.add_argument("--stack", required=True, help="a deployed stack (its credentials as Pulumi takes them)")
    audit.add_argument("--since", default="24h", help="30m, 24h, 7d, or an ISO date (default 24h)")
    audit.add_argument("--outcome", help="only the calls that ended so: refused-pin (PINs keyed wrong), "
                                         "refused-number, no-input, connected, busy, ... (every outcome the table shows)")
    audit.add_argument("--json", action="store_true", help="one object per call")
    audit.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    guard = commands.add_parser("lockouts", help="callers the PIN guard has locked out or is counting (pinCheck "
                                                 "function); --clear unlocks one")
    guard.add_argument("--stack", required=True, help="a deployed stack (its credentials as Pulumi takes them)")
    guard.add_argument("--clear", metavar="+1…|anonymous", help="lift this caller's lockout and count")
    guard.add_argument("--json", action="store_true", help="machine-readable")
    guard.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    permissions = commands.add_parser("account", help="the account's voice dialing permissions against what the "
                                                      "stack's line needs (read-only)")
    permissions.add_argument("--stack", required=True, help="a stack (its credentials as Pulumi takes them)")
    permissions.add_argument("--json", action="store_true", help="machine-readable")
    permissions.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    ring = commands.add_parser("call", help="ring a stack deployed to the local Twilio: the caller's keypresses "
                                            "played through the deployed line, kept as a call `calls` shows")
    ring.add_argument("--stack", required=True, help="a stack deployed to the local Twilio (callmask local-twilio)")
    ring.add_argument("--from", dest="caller", required=True, metavar="NUMBER", help="the caller's number, E.164")
    ring.add_argument("--press", action="append", dest="presses", metavar="KEYS",
                      help="what the caller presses at the next prompt, e.g. 24681357# (repeat per prompt)")
    ring.add_argument("--dial-status", default="completed", choices=call_simulation.DIAL_STATUSES,
                      help="what the dialed party does (default: answers)")
    ring.add_argument("--hangup", action="store_true", help="the caller hangs up once the presses run out")
    ring.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    adopt = commands.add_parser("adopt", help="take over a line built in the Studio editor: its flow and number, "
                                              "in place, the PINs moved into secrets")
    adopt.add_argument("--stack", required=True, help="an initialized stack (pulumi stack init) with its credentials")
    adopt.add_argument("--flow", required=True, metavar="FW…", help="the Console-built flow's SID")
    adopt.add_argument("--number", metavar="+1…|PN…", help="the line's number (default: the one whose voice URL is "
                                                              "the flow's webhook)")
    adopt.add_argument("--project-dir", type=Path, default=None, help=argparse.SUPPRESS)
    local = commands.add_parser("local-twilio", help="serve a local Twilio on 127.0.0.1 for a stack to deploy to")
    local.add_argument("--port", type=int, default=4010, help="the port to listen on (default 4010; 0: any free port)")
    local.add_argument("--console-flow", type=Path, metavar="FILE",
                       help="also hold this flow definition as if built in the Console, with a number pointing at "
                            "it (to try `callmask adopt`)")
    commands.add_parser("demo", help="deploy the line to a local Twilio, call it and destroy it (make demo)")
    return top


HANDLERS = {"render": flow_commands.cmd_render, "validate": flow_commands.cmd_validate,
            "simulate": flow_commands.cmd_simulate, "diagram": flow_commands.cmd_diagram, "diff": flow_commands.cmd_diff,
            "calls": stack_commands.cmd_calls, "call": stack_commands.cmd_call, "account": stack_commands.cmd_account,
            "adopt": stack_commands.cmd_adopt, "lockouts": stack_commands.cmd_lockouts,
            "local-twilio": stack_commands.cmd_local_twilio, "demo": stack_commands.cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        needs_project = getattr(args, "stack", None) or getattr(args, "base", None)
        if needs_project and args.project_dir is None:
            args.project_dir = project_dir_of(Path.cwd())
        return HANDLERS[args.command](args)
    except (CommandError, SettingsError, TemplateError, StackFileError, FlowRefused,
            call_simulation.SimulationError, StackUnreadable) as error:
        print(f"callmask: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `callmask render | head`: the reader left, end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
