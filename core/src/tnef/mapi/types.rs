//! MAPI property types ([MS-OXCDATA] 2.11.1); a multi-valued type is the
//! base type with [`MV_FLAG`].

/// PtypUnspecified.
pub const UNSPECIFIED: u16 = 0x0000;
/// PtypNull.
pub const NULL: u16 = 0x0001;
/// PtypInteger16.
pub const SHORT: u16 = 0x0002;
/// PtypInteger32.
pub const LONG: u16 = 0x0003;
/// PtypFloating32.
pub const FLOAT: u16 = 0x0004;
/// PtypFloating64.
pub const DOUBLE: u16 = 0x0005;
/// PtypCurrency.
pub const CURRENCY: u16 = 0x0006;
/// PtypFloatingTime.
pub const APPTIME: u16 = 0x0007;
/// PtypErrorCode.
pub const ERROR: u16 = 0x000A;
/// PtypBoolean.
pub const BOOLEAN: u16 = 0x000B;
/// PtypObject (in TNEF: an IID and the object's data, e.g. an embedded message).
pub const OBJECT: u16 = 0x000D;
/// PtypInteger64.
pub const I8: u16 = 0x0014;
/// PtypString8: 8-bit string in the message code page.
pub const STRING8: u16 = 0x001E;
/// PtypString: UTF-16LE.
pub const UNICODE: u16 = 0x001F;
/// PtypTime: FILETIME.
pub const SYSTIME: u16 = 0x0040;
/// PtypGuid.
pub const CLSID: u16 = 0x0048;
/// PtypServerId (stored as binary).
pub const SERVER_ID: u16 = 0x00FB;
/// PtypRestriction (stored as binary).
pub const RESTRICTION: u16 = 0x00FD;
/// PtypRuleAction (stored as binary).
pub const RULE_ACTION: u16 = 0x00FE;
/// PtypBinary.
pub const BINARY: u16 = 0x0102;
/// The multi-valued flag.
pub const MV_FLAG: u16 = 0x1000;
