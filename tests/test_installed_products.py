"""osinfo.installed_products reads the Uninstall list in one pass; uninstall_entry finds a product's key by its
subkey's name, whatever characters that name holds, for display_version."""

from __future__ import annotations

from azvhdaudit import osinfo
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView

UNINSTALL = r"Microsoft\Windows\CurrentVersion\Uninstall"


def _view(tree: dict[str, dict[str, object] | None]) -> RegistryView:
    hive = MemoryHive("SOFTWARE").update(tree)
    # a subkey name holding "/" (paths split on it, so the key is added by name)
    key = hive.ensure(UNINSTALL).add_key("Tools 1/2")
    key.set("DisplayName", "Half/Tools")
    key.set("DisplayVersion", "1.0")
    return RegistryView({"SOFTWARE": hive})


def test_products_in_list_order_with_a_string_display_name() -> None:
    view = _view(
        {
            UNINSTALL + r"\{B}": {"DisplayName": "VMware Tools", "DisplayVersion": "12.1.0"},
            UNINSTALL + r"\NoName": {"DisplayVersion": "2.0"},
            UNINSTALL + r"\Binary": {"DisplayName": b"\x01\x02"},
            UNINSTALL + r"\{A}": {"DisplayName": "Agent"},
        }
    )
    products = osinfo.installed_products(view)
    expected_order = [sub.name for sub in view.key("SOFTWARE\\" + UNINSTALL).subkeys()]  # type: ignore[union-attr]
    named = {"{B}": "VMware Tools", "Tools 1/2": "Half/Tools", "{A}": "Agent"}
    assert products == [(named[name], name) for name in expected_order if name in named]
    versions = {name: osinfo.display_version(osinfo.uninstall_entry(view, subkey)) for name, subkey in products}
    assert versions == {"VMware Tools": "12.1.0", "Half/Tools": "1.0", "Agent": ""}


def test_no_uninstall_key_no_products() -> None:
    hive = MemoryHive("SOFTWARE").update(
        {r"Microsoft\Windows\CurrentVersion": {"ProgramFilesDir": "C:\\Program Files"}}
    )
    view = RegistryView({"SOFTWARE": hive})
    assert osinfo.installed_products(view) == []
    assert osinfo.uninstall_entry(view, "{B}") is None and osinfo.display_version(None) == ""
