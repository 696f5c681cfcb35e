# One command to set up (`make setup`), one to test (see README).
PYTHON ?= python3
VENV := .venv
SPEC_PACKAGE := @twilio-alpha/mcp@0.7.0
SPEC_TARBALL := twilio-alpha-mcp-0.7.0.tgz
SPEC_SHA256 := 7ff791d1023cad6372496d8aba1c49bc3ffbcf0989b9f96b3a83d2df9d6af755
SPEC_DIR := .twilio-oai
SPEC_FILES := twilio_studio_v2.json twilio_api_v2010.json twilio_voice_v1.json twilio_serverless_v1.json \
	twilio_sync_v1.json
SPECS := $(addprefix $(SPEC_DIR)/,$(SPEC_FILES))

TOOLS := .tools/bin

.PHONY: setup venv specs functions tools demo
setup: venv specs functions tools

# The whole loop with no Twilio account: a local Twilio, `pulumi up`, calls, a prompt change, `destroy`.
demo: setup
	$(VENV)/bin/python -m callmask.cli.demo

# The Python environment alone: what the `callmask` command needs.
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Twilio's OpenAPI specs, from a pinned npm package checked against a pinned hash; the Twilio fake
# used by the tests validates every request and response against them.
specs: $(SPECS)

$(SPECS):
	mkdir -p $(SPEC_DIR)
	cd $(SPEC_DIR) && npm pack --silent $(SPEC_PACKAGE) >/dev/null
	cd $(SPEC_DIR) && echo "$(SPEC_SHA256)  $(SPEC_TARBALL)" | sha256sum --check --quiet
	tar -xzf $(SPEC_DIR)/$(SPEC_TARBALL) -C $(SPEC_DIR) --strip-components=4 \
		$(addprefix package/twilio-oai/spec/json/,$(SPEC_FILES))
	rm $(SPEC_DIR)/$(SPEC_TARBALL)
	touch $(SPECS)

# The PIN-check Function's packages (functions/package-lock.json): the `twilio` helper its Build is pinned
# to and the XML parser of its tests, for `node --test` and for running it under Node locally.
functions: functions/node_modules/.installed

functions/node_modules/.installed: functions/package.json functions/package-lock.json
	cd functions && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Pulumi CLI (built from Pulumi's Go modules, pinned by tools/pulumi/go.sum to the SDK's version),
# its Python language host and dynamic-provider plugin (Go, from the same modules) and the plugin's Python
# host; rebuilt only when one of them changes.
tools: $(TOOLS)/.installed

$(TOOLS)/.installed: tools/pulumi/go.mod tools/pulumi/go.sum $(wildcard tools/pulumi/*/*.go) \
		tools/dynamic-provider-host tools/engine_watch.py tools/install-pulumi requirements.txt
	tools/install-pulumi
	mkdir -p $(TOOLS) && touch $@
