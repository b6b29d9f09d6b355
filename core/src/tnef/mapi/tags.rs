//! The property ids this module reads or writes ([MS-OXPROPS]).

/// PidTagImportance.
pub const IMPORTANCE: u16 = 0x0017;
/// PidTagMessageClass.
pub const MESSAGE_CLASS: u16 = 0x001A;
/// PidTagPriority.
pub const PRIORITY: u16 = 0x0026;
/// PidTagSubject.
pub const SUBJECT: u16 = 0x0037;
/// PidTagClientSubmitTime.
pub const CLIENT_SUBMIT_TIME: u16 = 0x0039;
/// PidTagSentRepresentingName.
pub const SENT_REPRESENTING_NAME: u16 = 0x0042;
/// PidTagSentRepresentingAddressType.
pub const SENT_REPRESENTING_ADDRTYPE: u16 = 0x0064;
/// PidTagSentRepresentingEmailAddress.
pub const SENT_REPRESENTING_EMAIL: u16 = 0x0065;
/// PidTagConversationTopic.
pub const CONVERSATION_TOPIC: u16 = 0x0070;
/// PidTagTnefCorrelationKey.
pub const TNEF_CORRELATION_KEY: u16 = 0x007F;
/// PidTagSenderName.
pub const SENDER_NAME: u16 = 0x0C1A;
/// PidTagSenderAddressType.
pub const SENDER_ADDRTYPE: u16 = 0x0C1E;
/// PidTagSenderEmailAddress.
pub const SENDER_EMAIL: u16 = 0x0C1F;
/// PidTagRecipientType.
pub const RECIPIENT_TYPE: u16 = 0x0C15;
/// PidTagSenderEntryId.
pub const SENDER_ENTRYID: u16 = 0x0C19;
/// PidTagSenderSearchKey.
pub const SENDER_SEARCH_KEY: u16 = 0x0C1D;
/// PidTagSentRepresentingSearchKey.
pub const SENT_REPRESENTING_SEARCH_KEY: u16 = 0x003B;
/// PidTagSentRepresentingEntryId.
pub const SENT_REPRESENTING_ENTRYID: u16 = 0x0041;
/// PidTagEntryId.
pub const ENTRYID: u16 = 0x0FFF;
/// PidTagSearchKey.
pub const SEARCH_KEY: u16 = 0x300B;
/// PidTagDisplayCc.
pub const DISPLAY_CC: u16 = 0x0E03;
/// PidTagDisplayTo.
pub const DISPLAY_TO: u16 = 0x0E04;
/// PidTagMessageDeliveryTime.
pub const MESSAGE_DELIVERY_TIME: u16 = 0x0E06;
/// PidTagMessageFlags.
pub const MESSAGE_FLAGS: u16 = 0x0E07;
/// PidTagRtfInSync.
pub const RTF_IN_SYNC: u16 = 0x0E1F;
/// PidTagAttachSize.
pub const ATTACH_SIZE: u16 = 0x0E20;
/// PidTagBody.
pub const BODY: u16 = 0x1000;
/// PidTagRtfCompressed.
pub const RTF_COMPRESSED: u16 = 0x1009;
/// PidTagHtml / PidTagBodyHtml.
pub const HTML: u16 = 0x1013;
/// PidTagNativeBody.
pub const NATIVE_BODY: u16 = 0x1016;
/// PidTagInternetMessageId.
pub const INTERNET_MESSAGE_ID: u16 = 0x1035;
/// PidTagInternetReferences.
pub const INTERNET_REFERENCES: u16 = 0x1039;
/// PidTagInReplyToId.
pub const IN_REPLY_TO: u16 = 0x1042;
/// PidTagLastModificationTime.
pub const LAST_MODIFICATION_TIME: u16 = 0x3008;
/// PidTagCreationTime.
pub const CREATION_TIME: u16 = 0x3007;
/// PidTagDisplayName.
pub const DISPLAY_NAME: u16 = 0x3001;
/// PidTagAddressType.
pub const ADDRTYPE: u16 = 0x3002;
/// PidTagEmailAddress.
pub const EMAIL_ADDRESS: u16 = 0x3003;
/// PidTagAttachDataBinary / PidTagAttachDataObject.
pub const ATTACH_DATA: u16 = 0x3701;
/// PidTagAttachExtension.
pub const ATTACH_EXTENSION: u16 = 0x3703;
/// PidTagAttachFilename.
pub const ATTACH_FILENAME: u16 = 0x3704;
/// PidTagAttachMethod.
pub const ATTACH_METHOD: u16 = 0x3705;
/// PidTagAttachLongFilename.
pub const ATTACH_LONG_FILENAME: u16 = 0x3707;
/// PidTagRenderingPosition.
pub const RENDERING_POSITION: u16 = 0x370B;
/// PidTagAttachMimeTag.
pub const ATTACH_MIME_TAG: u16 = 0x370E;
/// PidTagAttachContentId.
pub const ATTACH_CONTENT_ID: u16 = 0x3712;
/// PidTagAttachContentLocation.
pub const ATTACH_CONTENT_LOCATION: u16 = 0x3713;
/// PidTagAttachFlags.
pub const ATTACH_FLAGS: u16 = 0x3714;
/// PidTagSmtpAddress.
pub const SMTP_ADDRESS: u16 = 0x39FE;
/// PidTagInternetCodepage.
pub const INTERNET_CPID: u16 = 0x3FDE;
/// PidTagMessageCodepage.
pub const MESSAGE_CODEPAGE: u16 = 0x3FFD;
/// PidTagAttachmentHidden.
pub const ATTACHMENT_HIDDEN: u16 = 0x7FFE;
