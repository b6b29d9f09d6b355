//! One SMTP session that we own from the TCP socket up: connect (TCP_NODELAY),
//! implicit TLS or STARTTLS, EHLO, AUTH, then any number of mail transactions
//! with a reply per recipient. lettre speaks the protocol (commands, replies,
//! TLS upgrade, SASL); this module decides what to send, enforces the security
//! policy and puts a timeout on every wait.
//!
//! After an error the connection is either still in a clean state (the server
//! refused a command and `RSET` succeeded) or it is marked broken and must be
//! dropped: a timed-out lettre future leaves the session in an unknown state.

use std::sync::Arc;

// `AsyncNetworkStream` is marked deprecated ("not meant to be made public"),
// but `AsyncSmtpConnection::set_stream`, which is public and not deprecated,
// takes nothing else: it is how our own STARTTLS swaps the stream.
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::{
    authentication::{Credentials, Mechanism},
    client::AsyncSmtpConnection,
    commands::{Auth, Data, Ehlo, Rset, Starttls},
    extension::{ClientId, Extension},
};
use postwire_core::envelope::Envelope;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::{net::TcpStream, time::timeout};

use super::{
    capabilities::Capabilities,
    content::Content,
    error::{SmtpError, Stage},
    params,
    reply::{self, DeliveryReport, RecipientStatus},
    settings::{AuthMechanism, Security, SettingsError, SmtpSettings},
    wire::{AbortSwitch, Reclaim, TlsInfo, Wire},
};

/// Settings resolved once per pool: TLS configurations, credentials, EHLO name.
pub(crate) struct Client {
    pub(crate) settings: SmtpSettings,
    server: String,
    client_id: ClientId,
    /// One TLS configuration for implicit TLS and STARTTLS.
    tls: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    credentials: Option<Credentials>,
    mechanisms: Vec<Mechanism>,
}

impl Client {
    /// Validates the settings and builds the TLS configurations (reads the CA file).
    pub(crate) fn new(settings: SmtpSettings) -> Result<Self, SmtpError> {
        settings.validate()?;
        let server = format!("{}:{}", settings.host, settings.port);
        let extra_roots = match &settings.ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        let tls_error = |reason: String| SmtpError::Tls {
            server: server.clone(),
            reason,
        };

        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in extra_roots {
            roots.add(der).map_err(|e| tls_error(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => {
                let (chain, key) = read_client_identity(cert, key)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    SettingsError::ClientCertificate {
                        path: cert.clone(),
                        reason: e.to_string(),
                    }
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        let server_name =
            ServerName::try_from(settings.host.clone()).map_err(|_| SettingsError::Invalid {
                what: "host",
                value: settings.host.clone(),
                expected: "a DNS name or IP address",
            })?;

        let client_id = match &settings.helo_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            _ => None,
        };
        let wanted = if settings.mechanisms.is_empty() {
            vec![AuthMechanism::Plain, AuthMechanism::Login]
        } else {
            settings.mechanisms.clone()
        };
        Ok(Client {
            server,
            client_id,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            credentials,
            mechanisms: wanted.into_iter().map(AuthMechanism::to_lettre).collect(),
            settings,
        })
    }

    /// `host:port` of the server.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// Opens the TCP connection (TCP_NODELAY set).
    async fn tcp(&self) -> Result<TcpStream, SmtpError> {
        let s = &self.settings;
        if let Some(proxy) = &s.proxy {
            return match timeout(s.connect_timeout, proxy.connect(&s.host, s.port)).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(SmtpError::Timeout {
                    stage: Stage::Connect,
                    after: s.connect_timeout,
                }),
            };
        }
        let tcp = match timeout(
            s.connect_timeout,
            TcpStream::connect((s.host.as_str(), s.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => {
                return Err(SmtpError::Connect {
                    server: self.server.clone(),
                    source,
                });
            }
            Err(_) => {
                return Err(SmtpError::Timeout {
                    stage: Stage::Connect,
                    after: s.connect_timeout,
                });
            }
        };
        tcp.set_nodelay(true).map_err(|source| SmtpError::Connect {
            server: self.server.clone(),
            source,
        })?;
        Ok(tcp)
    }

    /// The TLS handshake over `tcp`, the certificate checked against the
    /// roots for the configured host name.
    async fn handshake(
        &self,
        tcp: TcpStream,
        peer: std::net::SocketAddr,
        abort: &AbortSwitch,
    ) -> Result<Wire, SmtpError> {
        let after = self.settings.timeout;
        match timeout(after, self.tls.connect(self.server_name.clone(), tcp)).await {
            Ok(Ok(tls)) => Ok(Wire::tls(tls, peer, abort.clone())),
            Ok(Err(e)) if super::error::tls_failure(&e).is_some() => Err(SmtpError::Tls {
                server: self.server.clone(),
                reason: e.to_string(),
            }),
            Ok(Err(e)) => Err(SmtpError::ConnectionLost {
                stage: Stage::Tls,
                reason: e.to_string(),
            }),
            Err(_) => Err(SmtpError::Timeout {
                stage: Stage::Tls,
                after,
            }),
        }
    }

    async fn wait<T>(
        &self,
        stage: Stage,
        fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, SmtpError> {
        match timeout(self.settings.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(SmtpError::from_lettre(stage, &self.server, e)),
            Err(_) => Err(SmtpError::Timeout {
                stage,
                after: self.settings.timeout,
            }),
        }
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, SettingsError> {
    let pem = std::fs::read(path).map_err(|e| SettingsError::CaFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SettingsError::CaFile {
            path: path.to_owned(),
            reason: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(SettingsError::CaFile {
            path: path.to_owned(),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

/// The client certificate chain and its private key, from PEM files.
fn read_client_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    SettingsError,
> {
    let bad = |path: &std::path::Path, reason: String| SettingsError::ClientCertificate {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(cert).map_err(|e| bad(cert, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(bad(cert, "no CERTIFICATE block found".into()));
    }
    let pem = std::fs::read(key).map_err(|e| bad(key, e.to_string()))?;
    // Never echo the key file's content in an error.
    let key_der = rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        bad(
            key,
            "no PEM private key (PKCS#8, PKCS#1 or SEC1) found".into(),
        )
    })?;
    Ok((chain, key_der))
}

/// An open, greeted, secured and authenticated SMTP session.
pub(crate) struct Connection {
    conn: AsyncSmtpConnection,
    abort: AbortSwitch,
    broken: bool,
    /// The whole EHLO reply (after STARTTLS). With PIPELINING (RFC 2920),
    /// MAIL, RCPT and DATA go in one write.
    pub(crate) capabilities: Capabilities,
    /// TLS is in force (implicit or after STARTTLS).
    pub(crate) encrypted: bool,
    /// The TLS parameters, when encrypted.
    pub(crate) tls: Option<TlsInfo>,
}

impl Connection {
    /// Connects, secures and authenticates as the settings say.
    pub(crate) async fn open(client: &Client) -> Result<Self, SmtpError> {
        let mut conn = Self::greet(client).await?;
        conn.authenticate(client).await?;
        Ok(conn)
    }

    /// Connects, secures (implicit TLS or STARTTLS) and reads the
    /// capabilities; no AUTH yet.
    pub(crate) async fn greet(client: &Client) -> Result<Self, SmtpError> {
        let s = &client.settings;
        let tcp = client.tcp().await?;
        let peer = tcp.peer_addr().map_err(|source| SmtpError::Connect {
            server: client.server.clone(),
            source,
        })?;
        let abort = AbortSwitch::default();
        let reclaim: Reclaim = Arc::default();
        let mut tls = None;
        let wire = if s.security == Security::Tls {
            let wire = client.handshake(tcp, peer, &abort).await?;
            tls = wire.tls_info();
            wire
        } else {
            Wire::plain_reclaimable(tcp, peer, abort.clone(), reclaim.clone())
        };

        let mut conn = client
            .wait(
                Stage::Greeting,
                AsyncSmtpConnection::connect_with_transport(Box::new(wire), &client.client_id),
            )
            .await?;

        let offers_starttls = conn.server_info().supports_feature(Extension::StartTls);
        let upgrade = match s.security {
            Security::StartTls if !offers_starttls => {
                return Err(SmtpError::StartTlsUnavailable {
                    server: client.server.clone(),
                });
            }
            Security::StartTls => true,
            Security::Auto => offers_starttls,
            Security::None | Security::Tls => false,
        };
        #[allow(deprecated)]
        if upgrade {
            client.wait(Stage::StartTls, conn.command(Starttls)).await?;
            // lettre drops the plain stream, which leaves its socket in `reclaim`.
            conn.set_stream(AsyncNetworkStream::use_existing_tokio1(Box::new(
                Wire::detached(peer, abort.clone()),
            )));
            let tcp = reclaim
                .lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .ok_or_else(|| SmtpError::ConnectionLost {
                    stage: Stage::StartTls,
                    reason: "the socket was not handed back for STARTTLS".into(),
                })?;
            let wire = client.handshake(tcp, peer, &abort).await?;
            tls = wire.tls_info();
            conn.set_stream(AsyncNetworkStream::use_existing_tokio1(Box::new(wire)));
        }

        // lettre keeps only the extensions it knows (and not those after our
        // STARTTLS); ask again and keep the whole reply. (Before AUTH: an
        // EHLO after AUTH may reset the authentication.)
        let ehlo = client
            .wait(
                Stage::Greeting,
                conn.command(Ehlo::new(client.client_id.clone())),
            )
            .await?;
        let capabilities = Capabilities::parse(ehlo.message());
        Ok(Connection {
            conn,
            abort,
            broken: false,
            capabilities,
            encrypted: tls.is_some(),
            tls,
        })
    }

    /// SMTP AUTH with the configured credentials, if any, with the first of
    /// the configured mechanisms the server offers.
    pub(crate) async fn authenticate(&mut self, client: &Client) -> Result<(), SmtpError> {
        let s = &client.settings;
        let Some(credentials) = &client.credentials else {
            return Ok(());
        };
        if !self.encrypted && !s.allow_plaintext_auth {
            return Err(SmtpError::PlaintextAuthRefused {
                server: client.server.clone(),
                security: s.security,
            });
        }
        let Some(mechanism) = client
            .mechanisms
            .iter()
            .copied()
            .find(|m| self.capabilities.auth.iter().any(|a| *a == m.to_string()))
        else {
            return Err(SmtpError::NoAuthMechanism {
                server: client.server.clone(),
                wanted: client
                    .mechanisms
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let failed = |e: SmtpError| match e {
            SmtpError::Rejected { reply, .. } => SmtpError::AuthFailed {
                user: s.username.clone().unwrap_or_default(),
                reply,
            },
            e => e,
        };
        let protocol = |e: lettre::transport::smtp::Error| SmtpError::Protocol {
            stage: Stage::Auth,
            reason: e.to_string(),
        };
        let first = Auth::new(mechanism, credentials.clone(), None).map_err(protocol)?;
        let mut response = client
            .wait(Stage::Auth, self.conn.command(first))
            .await
            .map_err(failed)?;
        // A few challenges at most (LOGIN has two), as lettre does.
        let mut challenges = 10u8;
        while response.has_code(334) {
            if challenges == 0 {
                self.broken = true;
                return Err(SmtpError::Protocol {
                    stage: Stage::Auth,
                    reason: "too many AUTH challenges".into(),
                });
            }
            challenges -= 1;
            let next = Auth::new_from_response(mechanism, credentials.clone(), &response)
                .map_err(protocol)?;
            response = client
                .wait(Stage::Auth, self.conn.command(next))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// The connection cannot be used any more.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken || self.conn.has_broken()
    }

    /// Runs one mail transaction: MAIL FROM, RCPT TO per recipient, DATA, content.
    pub(crate) async fn deliver(
        &mut self,
        client: &Client,
        envelope: &Envelope,
        content: &Content,
    ) -> Result<DeliveryReport, SmtpError> {
        let result = self.transaction(client, envelope, content).await;
        match &result {
            Ok(_) => {}
            // Refused before anything was sent: the session is untouched.
            Err(
                SmtpError::InvalidAddress { .. }
                | SmtpError::NoRecipients
                | SmtpError::ExtensionMissing { .. }
                | SmtpError::TooLarge { .. }
                | SmtpError::NotEncrypted { .. }
                | SmtpError::Envelope(_),
            ) => {}
            Err(e) if e.reply().is_some() && !self.is_broken() => {
                // The server refused a command: leave the transaction cleanly.
                if client
                    .wait(Stage::MailFrom, self.conn.command(Rset))
                    .await
                    .is_err()
                {
                    self.broken = true;
                }
            }
            Err(_) => self.broken = true,
        }
        result
    }

    async fn transaction(
        &mut self,
        client: &Client,
        envelope: &Envelope,
        content: &Content,
    ) -> Result<DeliveryReport, SmtpError> {
        let commands = params::commands(envelope, content, &self.capabilities, self.encrypted)?;
        let recipients = if self.capabilities.pipelining {
            self.pipelined_envelope(client, &commands, &envelope.rcpt_to)
                .await?
        } else {
            self.stepwise_envelope(client, &commands, &envelope.rcpt_to)
                .await?
        };

        let (response, bytes) = content
            .send(&mut self.conn, &self.abort, client.settings.timeout)
            .await?;
        Ok(DeliveryReport {
            recipients,
            reply: reply::from_response(&response),
            bytes,
            warnings: commands.warnings,
        })
    }

    /// MAIL FROM, RCPT TO per recipient and DATA, each awaiting its reply.
    async fn stepwise_envelope(
        &mut self,
        client: &Client,
        commands: &params::Commands,
        names: &[String],
    ) -> Result<Vec<RecipientStatus>, SmtpError> {
        client
            .wait(Stage::MailFrom, self.conn.command(&commands.mail))
            .await?;
        let mut recipients = Vec::with_capacity(names.len());
        for (rcpt, name) in commands.rcpts.iter().zip(names) {
            let result = client.wait(Stage::RcptTo, self.conn.command(rcpt)).await;
            recipients.push(recipient_status(name, result)?);
        }
        if !recipients.iter().any(RecipientStatus::is_accepted) {
            return Err(SmtpError::AllRecipientsRejected { recipients });
        }
        client.wait(Stage::Data, self.conn.command(Data)).await?;
        Ok(recipients)
    }

    /// MAIL FROM, every RCPT TO and DATA in one write (RFC 2920), then every
    /// reply in order. All replies are read even after a refusal, so the
    /// session stays in step; should the server accept DATA without a valid
    /// sender or recipient, the connection is dropped mid-DATA (the server
    /// then discards the empty transaction).
    async fn pipelined_envelope(
        &mut self,
        client: &Client,
        commands: &params::Commands,
        names: &[String],
    ) -> Result<Vec<RecipientStatus>, SmtpError> {
        let mut batch = commands.mail.clone();
        for rcpt in &commands.rcpts {
            batch.push_str(rcpt);
        }
        batch.push_str(&Data.to_string());

        let mail_result = client.wait(Stage::MailFrom, self.conn.command(batch)).await;
        if let Err(e) = &mail_result
            && e.reply().is_none()
        {
            return mail_result.map(|_| Vec::new());
        }
        let mut recipients = Vec::with_capacity(names.len());
        for name in names {
            let result = client.wait(Stage::RcptTo, self.conn.read_response()).await;
            recipients.push(recipient_status(name, result)?);
        }
        let data_result = client.wait(Stage::Data, self.conn.read_response()).await;
        let refused = mail_result.is_err() || !recipients.iter().any(RecipientStatus::is_accepted);
        if refused && data_result.is_ok() {
            self.broken = true;
        }
        mail_result?;
        if !recipients.iter().any(RecipientStatus::is_accepted) {
            return Err(SmtpError::AllRecipientsRejected { recipients });
        }
        data_result?;
        Ok(recipients)
    }

    /// Sends one command and waits for its reply (under the timeout).
    pub(crate) async fn command(
        &mut self,
        client: &Client,
        stage: Stage,
        command: impl std::fmt::Display,
    ) -> Result<lettre::transport::smtp::response::Response, SmtpError> {
        let result = client.wait(stage, self.conn.command(command)).await;
        if result.as_ref().is_err_and(|e| e.reply().is_none()) {
            self.broken = true;
        }
        result
    }

    /// Says QUIT and returns the server's answer.
    pub(crate) async fn quit_reply(
        mut self,
        client: &Client,
    ) -> Result<lettre::transport::smtp::response::Response, SmtpError> {
        client
            .wait(
                Stage::Greeting,
                self.conn.command(lettre::transport::smtp::commands::Quit),
            )
            .await
    }

    /// Says QUIT (bounded by the timeout) and closes.
    pub(crate) async fn quit(mut self, client: &Client) {
        if !self.is_broken() {
            let _ = timeout(client.settings.timeout, self.conn.quit()).await;
        }
    }
}

/// A recipient's status from its RCPT TO reply: accepted or refused, both
/// recorded; only a failure of the connection itself ends the transaction.
fn recipient_status(
    name: &str,
    result: Result<lettre::transport::smtp::response::Response, SmtpError>,
) -> Result<RecipientStatus, SmtpError> {
    let reply = match result {
        Ok(response) => reply::from_response(&response),
        Err(SmtpError::Rejected { reply, .. }) => reply,
        Err(e) => return Err(e),
    };
    Ok(RecipientStatus {
        recipient: name.to_string(),
        reply,
    })
}
