"""Write ``az_table.json``: the options and allowed values of the ``az`` commands the capability manifest emits,
read from an installed azure-cli's own command table (not from its help text).

Run with the Python of an environment where azure-cli is installed (``pip install azure-cli==VERSION`` in a
separate venv; it is not a test dependency):

    /path/to/azure-cli-venv/bin/python tests/capabilities/dump_az_table.py

The tests (test_capabilities_register.py) check every emitted argument and value against the file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

COMMANDS = ("disk create", "disk grant-access", "disk revoke-access", "sig image-definition create")
OUT = Path(__file__).with_name("az_table.json")


def _command(cli: object, name: str) -> dict[str, list[str] | None]:
    """The options of ``az NAME`` and each one's allowed values (``None``: any value), after azure-cli has applied
    its argument registry (which ``az NAME --help`` makes it do)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.invoke([*name.split(), "--help"], out_file=io.StringIO())  # type: ignore[attr-defined]
        except SystemExit:
            pass
    command = cli.invocation.commands_loader.command_table[name]  # type: ignore[attr-defined]
    options: dict[str, list[str] | None] = {}
    for arg in command.arguments.values():
        settings = arg.type.settings
        if settings.get("help") == "==SUPPRESS==":
            continue
        choices = settings.get("choices")
        for option in settings.get("options_list") or ():
            if isinstance(option, str) and option.startswith("--"):
                options[option] = sorted(str(c) for c in choices) if choices else None
    return dict(sorted(options.items()))


def main() -> int:
    os.environ.setdefault("AZURE_CONFIG_DIR", tempfile.mkdtemp(prefix="azcfg-"))
    from importlib.metadata import version

    from azure.cli.core import get_default_cli

    data = {
        "source": f"azure-cli {version('azure-cli')} (azure-cli-core {version('azure-cli-core')}, "
        f"azure-mgmt-compute {version('azure-mgmt-compute')}), read from its command table by "
        "tests/capabilities/dump_az_table.py",
        "commands": {name: _command(get_default_cli(), name) for name in COMMANDS},
    }
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
