//! Delivery and abuse reports: `parseReport`, the npm side of
//! `postwire report parse` (core's `report` module does the work).

use wasm_bindgen::prelude::*;

use postwire_core::report::{self, ReportError};

use crate::{
    errors::{Coded, js},
    mime::bytes_from_js,
    spec,
};

// Read by the typescript_custom_section below and by the drift test.
#[allow(dead_code)]
pub(crate) const TS_REPORT: &str = r#"
/** What kind of report a message is. */
export type ReportKind = "delivery" | "feedback" | "unknown";

/** The Action field of a recipient (RFC 3464 2.3.3). */
export type ReportAction = "failed" | "delayed" | "delivered" | "relayed" | "expanded";

/** What happened to one recipient (RFC 3464 2.3); `null` where the report says nothing. */
export interface ReportRecipient {
  /** Final-Recipient, without its address type (`rfc822;`). */
  finalRecipient: string | null;
  /** Original-Recipient, without its type. */
  originalRecipient: string | null;
  /** Action. */
  action: ReportAction | null;
  /** Status: the enhanced status code (RFC 3463), e.g. `5.1.1`. */
  status: string | null;
  /** Diagnostic-Code without its type (`smtp;`): the remote server's answer. */
  diagnosticCode: string | null;
  /** Remote-MTA without its type (`dns;`). */
  remoteMta: string | null;
  /** Last-Attempt-Date, as written. */
  lastAttemptDate: string | null;
}

/** The fields of an abuse report (RFC 5965 3.1). */
export interface Feedback {
  /** Feedback-Type: `abuse`, `fraud`, `virus`, `not-spam`, `other`... */
  feedbackType: string | null;
  /** User-Agent of the reporting software. */
  userAgent: string | null;
  /** Version of the format (1). */
  version: string | null;
  /** Original-Mail-From: the envelope sender of the reported message. */
  originalMailFrom: string | null;
  /** Original-Rcpt-To: its envelope recipients. */
  originalRcptTo: string[];
  /** Arrival-Date, as written. */
  arrivalDate: string | null;
  /** Source-IP: where the reported message came from. */
  sourceIp: string | null;
  /** Reported-Domain. */
  reportedDomain: string[];
}

/** A delivery report (RFC 3464 DSN or a bounce text) or an abuse report (RFC 5965 ARF), as read. */
export interface Report {
  /** What kind of report this is. */
  kind: ReportKind;
  /** Reporting-MTA (DSN), without its type. */
  reportingMta: string | null;
  /** Original-Envelope-Id (DSN): the ENVID the sender gave. */
  originalEnvelopeId: string | null;
  /** Arrival-Date (DSN), as written. */
  arrivalDate: string | null;
  /** One entry per recipient reported on. */
  recipients: ReportRecipient[];
  /** The abuse report's fields (kind `feedback`). */
  feedback: Feedback | null;
  /** The Message-ID of the message reported on, when it came back. */
  originalMessageId: string | null;
  /** The header fields of the message reported on, as `[name, value]` pairs. */
  originalHeaders: [string, string][];
  /** The recipients were read from free text (Postfix, Exim, Exchange, Gmail shapes), not a standard part. */
  heuristic: boolean;
  /** What was missing, malformed or guessed. */
  warnings: string[];
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_REPORT_SECTION: &str = TS_REPORT;

/// Reads a received message (its bytes) as a delivery or abuse report
/// (lenient: what was missing or guessed is in `warnings`; a message that is
/// no report at all has kind `unknown`).
///
/// Throws a `PostwireError` (`INVALID_ARGUMENT` for a non-`Uint8Array`,
/// `EMPTY_INPUT`, `NOT_A_MESSAGE`).
#[wasm_bindgen(js_name = parseReport, unchecked_return_type = "Report")]
pub fn parse_report(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: JsValue,
) -> Result<JsValue, JsValue> {
    let bytes = bytes_from_js(&bytes, "").map_err(js)?;
    let report = report::parse_report(&bytes).map_err(js)?;
    spec::to_js(&report).map_err(js)
}

impl Coded for ReportError {
    fn code(&self) -> &'static str {
        match self {
            ReportError::Empty => "EMPTY_INPUT",
            ReportError::NotAMessage => "NOT_A_MESSAGE",
            _ => "INTERNAL",
        }
    }
    fn path(&self) -> String {
        String::new()
    }
}
