//! Replies and forwards as new messages (in progress).
