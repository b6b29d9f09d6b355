use postwire_core::tnef::*;
#[test]
fn explore() {
    let m = TnefMessage {
        subject: Some("Reunión".into()),
        from: Some(TnefAddress {
            name: Some("Ana Núñez".into()),
            email: "ana@example.com".into(),
            addr_type: "SMTP".into(),
        }),
        date_sent: Some(1_796_115_600),
        text: Some("plain body ünï\nline 2".into()),
        html: Some("<html><body><p>html body ünï</p></body></html>".into()),
        rtf: Some(
            rtf_html::encapsulate_html("<html><body><p>html body ünï</p></body></html>")
                .into_bytes(),
        ),
        recipients: vec![TnefRecipient {
            kind: RecipientKind::To,
            address: TnefAddress {
                name: Some("Bob".into()),
                email: "bob@example.com".into(),
                addr_type: "SMTP".into(),
            },
            properties: vec![],
        }],
        attachments: vec![
            TnefAttachment {
                long_filename: Some("report.pdf".into()),
                mime_type: Some("application/pdf".into()),
                data: b"%PDF-1.4 fake".to_vec(),
                ..Default::default()
            },
            TnefAttachment {
                long_filename: Some("naïve café.txt".into()),
                mime_type: Some("text/plain".into()),
                content_id: Some("c1@x".into()),
                data: b"hello\n".to_vec(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    std::fs::write("/tmp/tj/ours.dat", encode(&m).unwrap()).unwrap();
}
