"""The commands on a deployed stack (calls, call, lockouts, account, adopt) and on the local Twilio
(local-twilio, demo): each reads what it needs when it runs, so `callmask --help` loads none of it."""

from __future__ import annotations

import argparse

from callmask.operations.command_flow import CommandError, stand_in_flow


def cmd_calls(args: argparse.Namespace) -> int:
    from callmask.operations.deployed_commands import calls
    flow = stand_in_flow(args)
    print(calls(args, flow.definition, flow.pins, flow.allowed_countries, flow.settings.pin_guard.attempts_per_call))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from callmask.operations.deployed_commands import call
    print(call(args))
    return 0


def cmd_lockouts(args: argparse.Namespace) -> int:
    from callmask.operations import lockouts
    from callmask.operations.deployed_stack import read_stack
    flow = stand_in_flow(args)
    stack = read_stack(args.stack, args.project_dir)
    if args.clear:
        print(lockouts.clear(stack, args.clear))
    else:
        print(lockouts.lockouts(stack, args.json, flow.settings.pin_guard.window_minutes))
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    from callmask.operations.account_report import account
    from callmask.operations.deployed_stack import read_stack
    flow = stand_in_flow(args)
    stack = read_stack(args.stack, args.project_dir)
    print(account(stack, flow.allowed_countries, flow.allowed_number_types, as_text=not args.json))
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    from callmask.operations.adopt import adopt
    print(adopt(args))
    return 0


def cmd_local_twilio(args: argparse.Namespace) -> int:
    from callmask.local import twilio as local_twilio  # the spec validator loads only for this command
    try:
        local_twilio.serve(args.port, console_flow=args.console_flow)
    except OSError as error:
        raise CommandError(f"--port {args.port}: cannot listen on 127.0.0.1:{args.port} ({error.strerror}); "
                           "pick another port, or 0 for any free one") from None
    except local_twilio.SpecsMissing as error:
        raise CommandError(str(error)) from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from callmask.cli import demo
    return demo.run_demo()
