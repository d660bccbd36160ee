"""Local accounts and their logon rights as the SAM and SECURITY hives store them: two small fixed layouts.

References:
- The built-in Administrator's record: ``SAM\\SAM\\Domains\\Account\\Users\\000001F4`` (RID 500), value ``F``,
  the user's fixed-length record (REG_BINARY, 80 bytes on the Windows versions Azure runs). Microsoft publishes
  no layout for it; offline tools (RegRipper's ``samparse``, chntpw) read the account-control flags as the
  little-endian u16 at offset 0x38. The flags are the ``USER_ACCOUNT`` codes of [MS-SAMR] section 2.2.1.12
  (``USER_ACCOUNT_DISABLED`` 0x0001, ``USER_NORMAL_ACCOUNT`` 0x0010, ``USER_DONT_EXPIRE_PASSWORD`` 0x0200).
- An account's system access rights: ``SECURITY\\Policy\\Accounts\\<SID>\\ActSysAc``, the key's default value,
  a little-endian u32 whose bits are ntlsa.h's ``SECURITY_ACCESS_*`` (``SeNetworkLogonRight`` 0x2,
  ``SeDenyNetworkLogonRight`` 0x80, ``SeRemoteInteractiveLogonRight`` 0x400,
  ``SeDenyRemoteInteractiveLogonRight`` 0x800 ...).

The decoders take the value's bytes as stored and return ``None`` where they are too short to hold the field,
never a guess.
"""

from __future__ import annotations

__all__ = [
    "SAM_USERS",
    "ADMINISTRATOR_RID",
    "USER_F_FLAGS_OFFSET",
    "ACB_DISABLED",
    "user_account_flags",
    "LSA_ACCOUNTS",
    "SE_NETWORK_LOGON",
    "SE_DENY_NETWORK_LOGON",
    "SE_REMOTE_INTERACTIVE_LOGON",
    "SE_DENY_REMOTE_INTERACTIVE_LOGON",
    "system_access_mask",
]

#: the local account domain's users, one subkey per RID in 8 hex digits
SAM_USERS = r"HKLM\SAM\SAM\Domains\Account\Users"
ADMINISTRATOR_RID = 0x1F4
#: where the account-control flags (u16) lie in a user's ``F`` record
USER_F_FLAGS_OFFSET = 0x38
#: [MS-SAMR] 2.2.1.12 USER_ACCOUNT_DISABLED
ACB_DISABLED = 0x0001

#: the accounts that hold LSA rights, one subkey per SID
LSA_ACCOUNTS = r"HKLM\SECURITY\Policy\Accounts"
SE_NETWORK_LOGON = 0x2
SE_DENY_NETWORK_LOGON = 0x80
SE_REMOTE_INTERACTIVE_LOGON = 0x400
SE_DENY_REMOTE_INTERACTIVE_LOGON = 0x800


def user_account_flags(f_record: bytes) -> int | None:
    """The account-control flags of a SAM user's ``F`` record, ``None`` when the record ends before them."""
    end = USER_F_FLAGS_OFFSET + 2
    if len(f_record) < end:
        return None
    return int.from_bytes(f_record[USER_F_FLAGS_OFFSET:end], "little")


def system_access_mask(act_sys_ac: bytes) -> int | None:
    """The ``SECURITY_ACCESS_*`` mask an ``ActSysAc`` default value holds, ``None`` when it holds fewer than
    4 bytes."""
    if len(act_sys_ac) < 4:
        return None
    return int.from_bytes(act_sys_ac[:4], "little")
