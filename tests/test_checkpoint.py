"""Deployed stacks keep working across changes of the code: each dynamic provider is pickled into the state
by its import path (`callmask.providers.*`), so a checkpoint made by earlier code must preview through the
real CLI with every old resource read by its provider, and nothing replaced or deleted.

tests/fixtures/checkpoint/ holds `pulumi stack export` of the dev (studio) and prod (function mode) stacks,
deployed with the code as it was before the package was split by concern (commit 50a4739) to the local
Twilio, with PINs alice=24681357 and bob=86420135 and the passphrase below, and their stack files. Since
then the flows gained the PIN guard's retry (dev) and lockout (prod) widgets, prod's Function new code and
its guard's Sync Map and API key: those are the changes the preview may show, each read by the old
resource's provider.
"""

from __future__ import annotations

import re
import shutil

import pytest
from pulumi_cli import REPO, PulumiProject
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, with_numbers_for_sale

FIXTURES = REPO / "tests" / "fixtures" / "checkpoint"
FIXTURE_PASSPHRASE = "checkpoint-fixture-passphrase"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_checkpoint_made_before_the_move_previews_with_its_providers(tmp_path, fresh_twilio, stack):
    fresh_twilio.available = with_numbers_for_sale().available
    line = PulumiProject(tmp_path, {"CALLMASK_TWILIO_BASE_URL": fresh_twilio.base_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                                    "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PULUMI_CONFIG_PASSPHRASE": FIXTURE_PASSPHRASE})
    shutil.copy(FIXTURES / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    line.run("stack", "init", stack)
    line.run("stack", "import", "--file", str(FIXTURES / f"{stack}.json"))
    preview = line.run("preview", "--diff")
    assert "to delete" not in preview.stdout, preview.stdout
    changed = {kind: sorted(re.findall(rf"{sign} ?pulumi-python:dynamic/\w+:(\w+): \({kind}\)", preview.stdout))
               for sign, kind in (("~", "update"), (r"\+", "create"), (r"\+-", "replace"))}
    if stack == "prod":  # new code is a new (immutable) Function Version, built and deployed
        assert changed == {"update": ["EnvironmentVariables", "StudioFlow"], "create": ["ApiKey", "SyncMap", "SyncService"],
                           "replace": ["FunctionVersion", "ServerlessBuild", "ServerlessDeployment"]}, preview.stdout
        assert "9 unchanged" in preview.stdout, preview.stdout
    else:
        assert changed == {"update": ["StudioFlow"], "create": [], "replace": []}, preview.stdout
        assert "5 unchanged" in preview.stdout, preview.stdout
    assert fresh_twilio.writes() == [], "a preview writes nothing"
