//! The SMTP envelope: `envelopeOf(specOrBytes)`, by core's rules (MAIL FROM
//! from `sender` or `from`; RCPT TO from to + cc + bcc, de-duplicated).

use wasm_bindgen::prelude::*;

use postwire_core::Envelope;

use crate::{errors::js, mime::bytes_from_js, spec};

// Read by the typescript_custom_section below (which rustc does not count as a
// use) and by the drift test.
#[allow(dead_code)]
pub(crate) const TS_ENVELOPE: &str = r#"
/** The SMTP envelope of a message: bare addresses. */
export interface Envelope {
  /** The reverse path (MAIL FROM). */
  mailFrom: string;
  /** The forward paths (RCPT TO), de-duplicated. */
  rcptTo: string[];
  /** Delivery status notifications asked for (RFC 3461), from the spec's `dsn`. */
  dsn?: Dsn | null;
  /** REQUIRETLS (RFC 8689), from the spec's `requireTls`. */
  requireTls?: boolean;
}
/** When the receiving side should send a delivery status notification (RFC 3461 `NOTIFY`). */
export type DsnNotify = 'never' | 'success' | 'failure' | 'delay';

/** `NOTIFY` and `ORCPT` for one recipient. */
export interface DsnRecipient {
  /** The recipient, as in RCPT TO (compared ignoring ASCII case). */
  address: string;
  /** `NOTIFY` for this recipient; empty: the message's. */
  notify?: DsnNotify[];
  /** `ORCPT`: `type;address` (e.g. `rfc822;bob@example.org`) or a bare address. */
  orcpt?: string | null;
}

/** A request for delivery status notifications (RFC 3461). A server without
 * the DSN extension gets the message without it (and the result says so). */
export interface Dsn {
  /** `NOTIFY` for every recipient without its own; empty: the server's default. */
  notify?: DsnNotify[];
  /** `RET`: the full message or its headers only, in a failure report. */
  ret?: 'full' | 'hdrs' | null;
  /** `ENVID`: the sender's id for this transfer (printable ASCII, at most 100 characters). */
  envid?: string | null;
  /** Requests for single recipients, by address. */
  recipients?: DsnRecipient[];
}

"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_ENVELOPE_SECTION: &str = TS_ENVELOPE;

/// The SMTP envelope of a spec, or of finished message bytes (from their headers).
///
/// Throws a `PostwireError` (`NO_SENDER`, `NO_RECIPIENTS`, `INVALID_SPEC`, `NOT_A_MESSAGE`, ...).
#[wasm_bindgen(js_name = envelopeOf, unchecked_return_type = "Envelope")]
pub fn envelope_of(
    #[wasm_bindgen(js_name = specOrBytes, unchecked_param_type = "MessageSpec<BinaryInput> | Uint8Array")]
    spec_or_bytes: JsValue,
) -> Result<JsValue, JsValue> {
    let envelope = if spec_or_bytes.is_instance_of::<js_sys::Uint8Array>() {
        let bytes = bytes_from_js(&spec_or_bytes, "").map_err(js)?;
        Envelope::of_message(&bytes).map_err(js)?
    } else {
        Envelope::of_spec(&spec::from_js(spec_or_bytes).map_err(js)?).map_err(js)?
    };
    spec::to_js(&envelope).map_err(js)
}
