"""Prints, as a JSON array, every stack that has a Pulumi.<stack>.yaml: dev first, prod last.

The preview and deploy workflows build their matrix from this, so a new stack file is previewed and
deployed with no workflow change.
"""

import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
names = [path.name[len("Pulumi."):-len(".yaml")] for path in root.glob("Pulumi.*.yaml")]
print(json.dumps(sorted(names, key=lambda name: (name != "dev", name == "prod", name))))
