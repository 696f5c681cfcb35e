"""Prints, as a JSON array, every stack that has a Pulumi.<stack>.yaml: dev first, prod last. With
`--staged`, only the stacks that roll out in two steps (their file sets `callmask:publish: false`).

The preview and deploy workflows build their matrix from this, so a new stack file is previewed and
deployed with no workflow change.
"""

import json
import pathlib
import re
import sys

# Runs before any setup, on the runner's own Python, so it reads the one line it needs without PyYAML.
STAGED = re.compile(r"^\s+callmask:publish:\s*false\s*(#.*)?$", re.MULTILINE)

arguments = [argument for argument in sys.argv[1:] if argument != "--staged"]
root = pathlib.Path(arguments[0] if arguments else ".")


def staged(path: pathlib.Path) -> bool:
    return bool(STAGED.search(path.read_text()))


paths = [path for path in root.glob("Pulumi.*.yaml") if "--staged" not in sys.argv or staged(path)]
names = [path.name[len("Pulumi."):-len(".yaml")] for path in paths]
print(json.dumps(sorted(names, key=lambda name: (name != "dev", name == "prod", name))))
