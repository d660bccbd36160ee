"""The Azure command and template names the ``az`` and Bicep outputs may use, quoted from their sources.

The ``az`` commands' options and allowed values are not quoted here: ``az_table.json`` holds them as azure-cli
2.67.0's own command table reports them (written by ``dump_az_table.py`` from an installed azure-cli). azure-cli's
``custom.py`` (Azure/azure-cli, src/azure-cli/azure/cli/command_modules/vm/custom.py, ``create_gallery_image``)
adds ``SecurityType=TrustedLaunchSupported`` to a V2 definition given no SecurityType and drops
``SecurityType=Standard`` from the request.

``GALLERY_FEATURES``: the feature names ``az sig image-definition create --features`` passes through as
GalleryImageFeature name/value pairs; ``IsAcceleratedNetworkSupported=true`` is azure-cli's own test
(src/azure-cli/azure/cli/command_modules/vm/tests/latest/test_vm_commands.py), ``DiskControllerTypes`` with
``SCSI``/``NVMe`` from "Supported OS images for remote NVMe" (learn.microsoft.com/azure/virtual-machines/
enable-nvme-interface), ``SecurityType`` values from the Azure Verified Modules gallery module
(Azure/bicep-registry-modules, avm/res/compute/gallery, ``securityType`` allowed values), ``IsHibernateSupported``
with the value of a Bicep bool (``'${isHibernateSupported}'``: ``true``/``false``) from the same module's
avm/res/compute/gallery/image/main.bicep.

``BICEP_IMAGE_PROPERTIES``: "Microsoft.Compute galleries/images 2023-07-03" template reference
(learn.microsoft.com/azure/templates/microsoft.compute/2023-07-03/galleries/images), resource format.
"""

from __future__ import annotations

ANY = None

GALLERY_FEATURES: dict[str, frozenset[str] | None] = {
    "SecurityType": frozenset(
        {
            "Standard",
            "TrustedLaunch",
            "ConfidentialVM",
            "TrustedLaunchSupported",
            "ConfidentialVMSupported",
            "TrustedLaunchAndConfidentialVmSupported",
        }
    ),
    "DiskControllerTypes": frozenset({"SCSI", "NVMe", "SCSI,NVMe"}),
    "IsAcceleratedNetworkSupported": frozenset({"true", "false"}),
    "IsHibernateSupported": frozenset({"true", "false"}),
}

BICEP_IMAGE_PROPERTIES = {
    "architecture": frozenset({"x64", "Arm64"}),
    "description": ANY,
    "disallowed": ANY,
    "endOfLifeDate": ANY,
    "eula": ANY,
    "features": ANY,
    "hyperVGeneration": frozenset({"V1", "V2"}),
    "identifier": ANY,
    "osState": frozenset({"Generalized", "Specialized"}),
    "osType": frozenset({"Windows", "Linux"}),
    "privacyStatementUri": ANY,
    "purchasePlan": ANY,
    "recommended": ANY,
    "releaseNoteUri": ANY,
}
BICEP_RESOURCE_KEYS = {"parent", "location", "name", "properties", "tags"}
BICEP_IDENTIFIER_KEYS = {"offer", "publisher", "sku"}
