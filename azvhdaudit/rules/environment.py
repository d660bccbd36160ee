"""Machine environment: TEMP and TMP at their Windows defaults.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Set Windows configurations
for Azure" (``Set-ItemProperty ... Session Manager\\Environment -Name TEMP/TMP -Value
"%SystemRoot%\\TEMP" -Type ExpandString``; in the text since 2018).
"""

from __future__ import annotations

from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Severity
from azvhdaudit.rules.os import OS
from azvhdaudit.rules.values import CURRENT, Item, ValueRule, register_values

ENV = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment"

register_values(
    (
        ValueRule(
            id="os.temp_tmp_default",
            title="Machine TEMP and TMP environment variables at their defaults (%SystemRoot%\\TEMP)",
            group=OS,
            source="Set Windows configurations for Azure",
            severity=Severity.REQUIRED,
            items=(
                Item(ENV, "TEMP", "%SystemRoot%\\TEMP", compare="eq_ci", types=(RegType.EXPAND_SZ,), label="TEMP"),
                Item(ENV, "TMP", "%SystemRoot%\\TEMP", compare="eq_ci", types=(RegType.EXPAND_SZ,), label="TMP"),
            ),
            baselines=CURRENT,
            remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\"
            'Environment\' -Name TEMP -Value "%SystemRoot%\\TEMP" -Type ExpandString -Force; Set-ItemProperty '
            "-Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment' -Name TMP -Value "
            '"%SystemRoot%\\TEMP" -Type ExpandString -Force',
            rationale="Provisioning and the agent write to the machine TEMP folder. The value must be "
            "REG_EXPAND_SZ: a REG_SZ '%SystemRoot%\\TEMP' is not expanded. Both real hives in the tests "
            "(Windows 7, Windows 10 1709) carry exactly this.",
        ),
    )
)
