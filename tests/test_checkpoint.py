"""Deployed stacks keep working across changes of the code's layout: each dynamic provider is pickled into
the state by its import path (`callmask.providers.*`), so a checkpoint made by earlier code must preview
with no change through the real CLI.

tests/fixtures/checkpoint/ holds `pulumi stack export` of the dev (studio) and prod (function mode) stacks,
deployed with the code as it was before the package was split by concern (commit 50a4739) to the local
Twilio, with PINs alice=24681357 and bob=86420135 and the passphrase below, and their stack files.
"""

from __future__ import annotations

import shutil

import pytest
from pulumi_cli import REPO, PulumiProject
from callmask.local.twilio import ACCOUNT_SID, AUTH_TOKEN, with_numbers_for_sale

FIXTURES = REPO / "tests" / "fixtures" / "checkpoint"
FIXTURE_PASSPHRASE = "checkpoint-fixture-passphrase"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_checkpoint_made_before_the_move_previews_with_no_change(tmp_path, fresh_twilio, stack):
    fresh_twilio.available = with_numbers_for_sale().available
    line = PulumiProject(tmp_path, {"CALLMASK_TWILIO_BASE_URL": fresh_twilio.base_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                                    "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PULUMI_CONFIG_PASSPHRASE": FIXTURE_PASSPHRASE})
    shutil.copy(FIXTURES / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    line.run("stack", "init", stack)
    line.run("stack", "import", "--file", str(FIXTURES / f"{stack}.json"))
    preview = line.run("preview", "--diff", "--expect-no-changes")
    assert "to update" not in preview.stdout and "to create" not in preview.stdout and "to replace" not in preview.stdout
    assert f"{14 if stack == 'prod' else 6} unchanged" in preview.stdout, preview.stdout
    assert fresh_twilio.writes() == [], "a preview writes nothing"
