"""Print the pins e2e/requirements.txt needs for the installed Home Assistant.

Run by .ci/e2e inside the venv. Home Assistant runs there with --skip-pip,
so every requirement of every integration it sets up must be installed
beforehand: those it always sets up (bootstrap's core and default sets and
the base entity platforms), the domains of e2e/configuration.yaml, the MQTT
config entry's, and their dependencies and after-dependencies (mqtt's config
flow imports hassio, for example), read from each integration's manifest.

Usage: python3 requirements.py CONFIGURATION_YAML REQUIREMENTS_TXT
Prints one "name==version  # integrations" line per requirement and exits 1
when REQUIREMENTS_TXT lacks one of them or pins it differently.
"""

import json
import pathlib
import re
import sys

import homeassistant
from homeassistant import bootstrap
from homeassistant.const import BASE_PLATFORMS, __version__

# Set up only with their own config entry or YAML, which the test never makes.
NOT_SET_UP = {"sentry", "cloud", "recorder", "debugpy", "zeroconf", "bluetooth", "dhcp", "ssdp", "usb"}
# Integrations whose requirements the test needs although HA does not set
# them up: their modules are imported by others (mqtt imports hassio).
IMPORTED = {"hassio"}


def main() -> int:
    config_yaml, requirements_txt = sys.argv[1], sys.argv[2]
    components = pathlib.Path(homeassistant.__file__).parent / "components"

    def manifest(domain):
        path = components / domain / "manifest.json"
        return json.loads(path.read_text()) if path.exists() else None

    # Top-level keys of configuration.yaml are domains (no YAML parser needed
    # for that; tags like !env_var stay out of the way).
    configured = set(re.findall(r"^([a-z_]+):", pathlib.Path(config_yaml).read_text(), re.M))
    wanted = (
        set(bootstrap.CORE_INTEGRATIONS)
        | set(bootstrap.LOGGING_AND_HTTP_DEPS_INTEGRATIONS)
        | set(bootstrap.FRONTEND_INTEGRATIONS)
        | set(bootstrap.DEFAULT_INTEGRATIONS)
        | (set(BASE_PLATFORMS) - {"calendar", "todo"})
        | configured
        | {"mqtt"}
        | IMPORTED
    ) - NOT_SET_UP
    seen, todo = set(), list(wanted)
    while todo:
        domain = todo.pop()
        if domain in seen or domain in NOT_SET_UP:
            continue
        m = manifest(domain)
        if m is None:
            continue
        seen.add(domain)
        todo += m.get("dependencies", []) + m.get("after_dependencies", [])

    needed = {}
    for domain in sorted(seen):
        for req in manifest(domain).get("requirements", []):
            needed.setdefault(req, []).append(domain)

    pinned = {}
    for line in pathlib.Path(requirements_txt).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pinned[name.strip().lower()] = version.strip()

    problems = []
    print(f"# Integration requirements of homeassistant {__version__} (integration: manifest pin)")
    for req, domains in sorted(needed.items(), key=lambda kv: kv[0].lower()):
        print(f"{req:<36} # {', '.join(domains)}")
        name, _, version = req.partition("==")
        if pinned.get(name.strip().lower()) != version.strip():
            problems.append(req)
    if problems:
        print(f"missing or different in {requirements_txt}: {' '.join(problems)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
