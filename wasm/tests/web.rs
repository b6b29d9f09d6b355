//! The bindings tested from the Rust side, inside WebAssembly (Node.js runs
//! them through wasm-bindgen-test-runner): values cross the boundary as JS
//! values, errors come back as `Error` objects with `code` and `path`, and
//! time and entropy come from the host. Run with `scripts/test-wasm-rust.sh`.
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect, Uint8Array};
use postwire_wasm::{envelope::envelope_of, mime::build_eml, mime::parse_eml};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap_or_else(|e| panic!("bad test JSON {json}: {e:?}"))
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn error_of(result: Result<impl std::fmt::Debug, JsValue>) -> (String, String) {
    let err = result.expect_err("expected an error");
    assert!(
        err.is_instance_of::<js_sys::Error>(),
        "not an Error: {err:?}"
    );
    let code = get(&err, "code").as_string().unwrap_or_default();
    let path = get(&err, "path").as_string().unwrap_or_default();
    (code, path)
}

const SPEC: &str = r#"{"from": "Ana <ana@example.com>", "to": ["bob@example.com"], "subject": "Hola", "text": "hi"}"#;

#[wasm_bindgen_test]
fn fixed_options_give_the_same_bytes_and_the_spec_comes_back() {
    let options = js(r#"{"now": 1764000000000, "seed": 42}"#);
    let a = build_eml(js(SPEC), Some(options.clone())).unwrap_or_else(|e| panic!("{e:?}"));
    let b = build_eml(js(SPEC), Some(options)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(a, b);
    let text = String::from_utf8_lossy(&a);
    assert!(
        text.contains("Date: Mon, 24 Nov 2025 16:00:00 +0000\r\n"),
        "{text}"
    );
    let spec =
        parse_eml(Uint8Array::from(a.as_slice()).into(), None).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(get(&spec, "subject").as_string().as_deref(), Some("Hola"));
    assert_eq!(get(&spec, "text").as_string().as_deref(), Some("hi"));
}

#[wasm_bindgen_test]
fn without_options_each_build_gets_fresh_entropy() {
    let a = build_eml(js(SPEC), None).unwrap_or_else(|e| panic!("{e:?}"));
    let b = build_eml(js(SPEC), None).unwrap_or_else(|e| panic!("{e:?}"));
    assert_ne!(
        a, b,
        "crypto.getRandomValues should give different message ids"
    );
}

#[wasm_bindgen_test]
fn errors_are_js_errors_with_code_and_path() {
    let bad = js(r#"{"from": "ana@example.com", "to": ["ok@example.com", "bob"]}"#);
    assert_eq!(
        error_of(build_eml(bad, None)),
        ("INVALID_SPEC".into(), "to[1]".into())
    );
    assert_eq!(
        error_of(build_eml(js(SPEC), Some(js(r#"{"seed": -1}"#)))),
        ("INVALID_OPTIONS".into(), "seed".into())
    );
    assert_eq!(
        error_of(parse_eml(JsValue::from_str("From: a@b.c"), None)),
        ("INVALID_ARGUMENT".into(), String::new())
    );
    assert_eq!(
        error_of(envelope_of(js(r#"{"from": "ana@example.com"}"#))),
        ("NO_RECIPIENTS".into(), "to".into())
    );
}

#[wasm_bindgen_test]
fn envelope_of_spec_is_a_plain_object() {
    let env = envelope_of(js(
        r#"{"from": "a@example.com", "to": ["b@example.com"], "bcc": ["c@example.com"]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(env.is_instance_of::<Object>());
    assert_eq!(
        get(&env, "mailFrom").as_string().as_deref(),
        Some("a@example.com")
    );
    let rcpt: js_sys::Array = get(&env, "rcptTo")
        .dyn_into()
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(rcpt.length(), 2);
}

#[wasm_bindgen_test]
fn attachment_bytes_in_and_out() {
    let options = js(r#"{"now": 1764000000000, "seed": 42}"#);
    let with_text = js(
        r#"{"from": "a@example.com", "to": ["b@example.com"], "attachments": [{"filename": "x.bin", "content": "AAEC/w=="}]}"#,
    );
    let with_bytes = js(
        r#"{"from": "a@example.com", "to": ["b@example.com"], "attachments": [{"filename": "x.bin"}]}"#,
    );
    let list = get(&with_bytes, "attachments");
    let item = Reflect::get(&list, &0.into()).unwrap_or(JsValue::UNDEFINED);
    let bytes = Uint8Array::from(&[0u8, 1, 2, 255][..]);
    Reflect::set(&item, &"content".into(), &bytes).unwrap_or_default();
    let a = build_eml(with_text, Some(options.clone())).unwrap_or_else(|e| panic!("{e:?}"));
    let b = build_eml(with_bytes, Some(options)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(a, b);
    let spec = parse_eml(
        Uint8Array::from(a.as_slice()).into(),
        Some(js(r#"{"bytes": true}"#)),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let item = Reflect::get(&get(&spec, "attachments"), &0.into()).unwrap_or(JsValue::UNDEFINED);
    let content = get(&item, "content");
    let content = content.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec);
    assert_eq!(content, Some(vec![0u8, 1, 2, 255]));
}
