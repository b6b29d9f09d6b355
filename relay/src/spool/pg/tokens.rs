//! Tokens shared by every relay on one database (`postwire_tokens`).
