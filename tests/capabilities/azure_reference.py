"""The Azure command and template names the ``az`` and Bicep outputs may use, quoted from their sources.

``AZ_COMMANDS``: azure-cli 2.67.0 (PyPI ``azure_cli-2.67.0-py3-none-any.whl``, sha256
491c2561241e379a117f26ed34abf30476467dced19a9f760804f90d830edf3a; in the repository Azure/azure-cli,
src/azure-cli/azure/cli/command_modules/vm/):
- ``_params.py``, ``argument_context('disk')`` / ``('disk create')`` / ``('sig image-definition create')`` and the
  mixed ``['disk', 'snapshot']`` scope: ``os_type`` (OperatingSystemTypes), ``upload_size_bytes``,
  ``hyper_v_generation`` (HyperVGenerationTypes V1/V2), ``security_type`` (DiskSecurityTypes plus
  ``COMPATIBLE_SECURITY_TYPE_VALUE = 'Standard'`` of ``_constants.py``), ``architecture`` (Architecture x64/Arm64),
  ``accelerated_network`` (three-state flag), ``upload_type`` ``['Upload', 'UploadWithSecurityData']``;
  ``os_state`` (OperatingSystemStateTypes Generalized/Specialized), ``gallery_name`` ``--gallery-name``,
  ``gallery_image_name`` ``--gallery-image-definition``, ``publisher``/``offer``/``sku``, ``features``;
  ``name`` ``--name`` (``name_arg_type``), ``location``; ``--resource-group`` is azure-cli-core's global argument.
- ``custom.py``: ``create_managed_disk(cmd, resource_group_name, disk_name, location, ..., os_type, ...,
  upload_size_bytes, ..., hyper_v_generation, ..., security_type, support_hibernation, ..., accelerated_network,
  architecture, ..., upload_type, ...)`` and ``create_gallery_image(cmd, resource_group_name, gallery_name,
  gallery_image_name, os_type, publisher, offer, sku, os_state='Generalized', ..., hyper_v_generation='V2',
  features=None, architecture=None)``, which adds ``SecurityType=TrustedLaunchSupported`` to a V2 definition given
  no SecurityType and drops ``SecurityType=Standard`` from the request.
- The enum values are azure-mgmt-compute's (``~=33.0.0``, the version azure-cli 2.67.0 requires).

``GALLERY_FEATURES``: the feature names ``az sig image-definition create --features`` passes through as
GalleryImageFeature name/value pairs; ``IsAcceleratedNetworkSupported=true`` is azure-cli's own test
(src/azure-cli/azure/cli/command_modules/vm/tests/latest/test_vm_commands.py), ``DiskControllerTypes`` with
``SCSI``/``NVMe`` from "Supported OS images for remote NVMe" (learn.microsoft.com/azure/virtual-machines/
enable-nvme-interface), ``SecurityType`` values from the Azure Verified Modules gallery module
(Azure/bicep-registry-modules, avm/res/compute/gallery, ``securityType`` allowed values).

``BICEP_IMAGE_PROPERTIES``: "Microsoft.Compute galleries/images 2023-07-03" template reference
(learn.microsoft.com/azure/templates/microsoft.compute/2023-07-03/galleries/images), resource format.
"""

from __future__ import annotations

ANY = None

AZ_COMMANDS: dict[str, dict[str, frozenset[str] | None]] = {
    "disk create": {
        "--resource-group": ANY,
        "--name": ANY,
        "--location": ANY,
        "--os-type": frozenset({"Windows", "Linux"}),
        "--upload-type": frozenset({"Upload", "UploadWithSecurityData"}),
        "--upload-size-bytes": ANY,
        "--hyper-v-generation": frozenset({"V1", "V2"}),
        "--security-type": frozenset({
            "Standard", "TrustedLaunch", "ConfidentialVM_VMGuestStateOnlyEncryptedWithPlatformKey",
            "ConfidentialVM_DiskEncryptedWithPlatformKey", "ConfidentialVM_DiskEncryptedWithCustomerKey",
            "ConfidentialVM_NonPersistedTPM",
        }),
        "--architecture": frozenset({"x64", "Arm64"}),
        "--accelerated-network": frozenset({"true", "false"}),
        "--support-hibernation": frozenset({"true", "false"}),
    },
    "sig image-definition create": {
        "--resource-group": ANY,
        "--gallery-name": ANY,
        "--gallery-image-definition": ANY,
        "--publisher": ANY,
        "--offer": ANY,
        "--sku": ANY,
        "--os-type": frozenset({"Windows", "Linux"}),
        "--os-state": frozenset({"Generalized", "Specialized"}),
        "--hyper-v-generation": frozenset({"V1", "V2"}),
        "--architecture": frozenset({"x64", "Arm64"}),
        "--features": ANY,
    },
}

GALLERY_FEATURES: dict[str, frozenset[str] | None] = {
    "SecurityType": frozenset({"Standard", "TrustedLaunch", "ConfidentialVM", "TrustedLaunchSupported",
                               "ConfidentialVMSupported", "TrustedLaunchAndConfidentialVmSupported"}),
    "DiskControllerTypes": frozenset({"SCSI", "NVMe", "SCSI,NVMe"}),
    "IsAcceleratedNetworkSupported": frozenset({"true", "false"}),
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
