//! `db::connect` against throwaway clusters: both connection-string forms, the libpq
//! environment (injected, never the process's), service and password files, every sslmode
//! against a server with a certificate from a CA made here, and the error messages, none of
//! which may show the password.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lockstep::db::cluster::TempCluster;
use lockstep::db::connect::{
    default_socket_dir, ssl_in_use, ConnectError, ConnectOptions, Host, PasswordSource, RootCert,
    SslMode,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// Distinctive, and awkward: a space, a quote, `@`, `:` and `/`.
const PASSWORD: &str = "Qx7 s3cr'et@pass:w/ord";
const SECRET_PART: &str = "s3cr";

fn assert_secret_free(what: &str) {
    assert!(
        !what.contains(SECRET_PART) && !what.contains("Qx7"),
        "the password leaked into: {what}"
    );
}

/// Checks the error's Display (one line) and Debug for the password, and returns Display.
fn checked(e: &ConnectError) -> String {
    let text = e.to_string();
    assert_secret_free(&text);
    assert_secret_free(&format!("{e:?}"));
    assert!(!text.contains('\n'), "not one line: {text}");
    text
}

/// A replication connection with a wrong password (role `who`): refused, saying why, and
/// without the password in the message.
async fn refused_for_the_password(o: ConnectOptions, who: &str) {
    let e = o
        .connect_replication()
        .await
        .err()
        .expect("a wrong password");
    let said = checked(&e);
    assert!(
        said.contains("password authentication failed"),
        "{who}: {said}"
    );
}

fn checked_options(o: &ConnectOptions) {
    assert_secret_free(&o.describe());
    assert_secret_free(&format!("{o:?}"));
}

/// The URL-encoded form of [`PASSWORD`].
fn password_in_url() -> String {
    PASSWORD
        .replace(' ', "%20")
        .replace('\'', "%27")
        .replace('@', "%40")
        .replace(':', "%3A")
        .replace('/', "%2F")
}

/// The quoted keyword/value form of [`PASSWORD`].
fn password_in_keywords() -> String {
    format!("'{}'", PASSWORD.replace('\\', "\\\\").replace('\'', "\\'"))
}

struct Env(HashMap<String, String>);

impl Env {
    fn new(pairs: &[(&str, &str)]) -> Env {
        Env(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

fn resolve(url: Option<&str>, env: &[(&str, &str)], home: &Path) -> ConnectOptions {
    let env = Env::new(env);
    let o = ConnectOptions::resolve_with(url, &|k| env.get(k), Some(home))
        .unwrap_or_else(|e| panic!("resolves: {e}"));
    checked_options(&o);
    o
}

fn resolve_err(url: Option<&str>, env: &[(&str, &str)], home: &Path) -> ConnectError {
    let env = Env::new(env);
    match ConnectOptions::resolve_with(url, &|k| env.get(k), Some(home)) {
        Ok(o) => panic!("expected an error, got {}", o.describe()),
        Err(e) => {
            checked(&e);
            e
        }
    }
}

fn home() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lockstep-home-")
        .tempdir()
        .expect("temp home")
}

fn write(path: &Path, text: &str, mode: u32) -> PathBuf {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path.to_path_buf()
}

async fn connect(o: &ConnectOptions) -> Client {
    match o.connect().await {
        Ok(c) => c,
        Err(e) => panic!("{} should connect: {}", o.describe(), checked(&e)),
    }
}

async fn connect_err(o: &ConnectOptions) -> String {
    match o.connect().await {
        Ok(_) => panic!("{} should not connect", o.describe()),
        Err(e) => checked(&e),
    }
}

async fn one_value(client: &Client, sql: &str) -> String {
    client
        .query_one(sql, &[])
        .await
        .expect("query")
        .get::<_, String>(0)
}

async fn tls(client: &Client) -> bool {
    ssl_in_use(client).await.expect("pg_stat_ssl")
}

fn start_password_cluster() -> TempCluster {
    TempCluster::builder()
        .password(PASSWORD)
        .start()
        .expect("a throwaway PostgreSQL must start for this test")
}

// ---------------------------------------------------------------------------------------
// Resolution without a server.

#[test]
fn url_form_resolves_every_part() {
    let h = home();
    let o = resolve(
        Some(&format!(
            "postgresql://al%20ice:{}@[::1]:6543/my%2Fdb?sslmode=verify-full&application_name=mig%20run&sslrootcert=/ca.pem&connect_timeout=7",
            password_in_url()
        )),
        &[("PGPASSWORD", "other"), ("PGHOST", "elsewhere")],
        h.path(),
    );
    assert_eq!(o.host(), &Host::Tcp("::1".into()));
    assert_eq!(o.port(), 6543);
    assert_eq!(o.user(), "al ice");
    assert_eq!(o.dbname(), "my/db");
    assert_eq!(o.application_name(), "mig run");
    assert_eq!(o.sslmode(), SslMode::VerifyFull);
    assert_eq!(
        o.sslrootcert(),
        Some(&RootCert::File {
            path: "/ca.pem".into(),
            explicit: true
        })
    );
    assert_eq!(o.connect_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(o.password_source(), Some(&PasswordSource::Explicit));
    assert_eq!(
        o.describe(),
        "al ice@[::1]:6543/my/db (sslmode=verify-full)"
    );

    let o = resolve(
        Some("postgres://bob@/app?host=/run/sock&port=5999"),
        &[],
        h.path(),
    );
    assert_eq!(o.host(), &Host::Socket("/run/sock".into()));
    assert_eq!(o.port(), 5999);
    assert_eq!(o.describe(), "bob@/run/sock:5999/app (unix socket)");
    assert!(!o.has_password());

    let o = resolve(Some("postgres://u@h/d?ssl=true"), &[], h.path());
    assert_eq!(o.sslmode(), SslMode::Require);
}

#[test]
fn keyword_form_resolves_every_part() {
    let h = home();
    let o = resolve(
        Some(&format!(
            "host=db.internal port=5433 user=app password={} dbname='my db' application_name=x sslmode=require connect_timeout=0",
            password_in_keywords()
        )),
        &[],
        h.path(),
    );
    assert_eq!(o.host(), &Host::Tcp("db.internal".into()));
    assert_eq!(o.port(), 5433);
    assert_eq!(o.user(), "app");
    assert_eq!(o.dbname(), "my db");
    assert_eq!(o.application_name(), "x");
    assert_eq!(o.sslmode(), SslMode::Require);
    assert_eq!(o.connect_timeout(), None, "0 waits forever, as in libpq");
    assert!(o.has_password());
    assert_eq!(o.describe(), "app@db.internal:5433/my db (sslmode=require)");

    let o = resolve(Some("host=h connect_timeout=1"), &[], h.path());
    assert_eq!(
        o.connect_timeout(),
        Some(Duration::from_secs(2)),
        "libpq's minimum"
    );
}

#[test]
fn unknown_unsupported_and_invalid_parameters_are_named() {
    let h = home();
    let e = resolve_err(Some("host=h colour=blue"), &[], h.path());
    assert_eq!(
        e.to_string(),
        "unknown connection parameter `colour` (in the connection string)"
    );
    let e = resolve_err(Some("postgres://h/db?colour=blue"), &[], h.path());
    assert_eq!(
        e.to_string(),
        "unknown connection parameter `colour` (in the URL)"
    );
    let e = resolve_err(Some("host=h sslcert=/x.crt"), &[], h.path());
    assert!(matches!(e, ConnectError::UnsupportedParameter { ref key, .. } if key == "sslcert"));
    let e = resolve_err(Some("host=h"), &[("PGPORT", "54x")], h.path());
    assert_eq!(
        e.to_string(),
        "invalid `port` (in PGPORT): `54x` is not a port number (1-65535)"
    );
    let e = resolve_err(None, &[("PGSSLMODE", "verify")], h.path());
    assert!(
        e.to_string()
            .starts_with("invalid `sslmode` (in PGSSLMODE)"),
        "{e}"
    );
    let e = resolve_err(Some("host=a,b"), &[], h.path());
    assert!(e.to_string().contains("one host only"), "{e}");
    let e = resolve_err(
        Some(&format!(
            "host=h password={}",
            password_in_keywords().trim_end_matches('\'')
        )),
        &[],
        h.path(),
    );
    assert!(e.to_string().contains("unterminated"), "{e}");
    // sslrootcert=system: verify-full by default, weaker modes refused (libpq 16).
    let o = resolve(Some("host=h sslrootcert=system"), &[], h.path());
    assert_eq!(o.sslmode(), SslMode::VerifyFull);
    let e = resolve_err(
        Some("host=h sslrootcert=system sslmode=require"),
        &[],
        h.path(),
    );
    assert!(e.to_string().contains("verify-full"), "{e}");
}

#[test]
fn environment_fills_what_is_not_given() {
    let h = home();
    let env = [
        ("PGHOST", "envhost"),
        ("PGPORT", "5555"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", PASSWORD),
        ("PGDATABASE", "envdb"),
        ("PGAPPNAME", "envapp"),
        ("PGSSLMODE", "verify-ca"),
        ("PGSSLROOTCERT", "/env/root.crt"),
        ("PGCONNECT_TIMEOUT", "3"),
    ];
    let o = resolve(None, &env, h.path());
    assert_eq!(o.host(), &Host::Tcp("envhost".into()));
    assert_eq!(o.port(), 5555);
    assert_eq!(o.user(), "envuser");
    assert_eq!(o.dbname(), "envdb");
    assert_eq!(o.application_name(), "envapp");
    assert_eq!(o.sslmode(), SslMode::VerifyCa);
    assert_eq!(
        o.sslrootcert(),
        Some(&RootCert::File {
            path: "/env/root.crt".into(),
            explicit: true
        })
    );
    assert_eq!(o.connect_timeout(), Some(Duration::from_secs(3)));
    assert_eq!(o.password_source(), Some(&PasswordSource::Environment));

    // Anything given explicitly wins over the environment.
    let o = resolve(
        Some("host=h port=1 user=u password=p dbname=d application_name=a sslmode=disable"),
        &env,
        h.path(),
    );
    assert_eq!(
        (
            o.host(),
            o.port(),
            o.user(),
            o.dbname(),
            o.application_name()
        ),
        (&Host::Tcp("h".into()), 1, "u", "d", "a")
    );
    assert_eq!(o.sslmode(), SslMode::Disable);
    assert_eq!(o.password_source(), Some(&PasswordSource::Explicit));
    // An empty value stops the search and means the default.
    let o = resolve(Some("host='' dbname=x"), &env, h.path());
    assert_eq!(o.host(), &Host::Socket(default_socket_dir()));
}

#[test]
fn defaults_follow_libpq() {
    let h = home();
    let o = resolve(None, &[("PGUSER", "someone")], h.path());
    assert_eq!(o.host(), &Host::Socket(default_socket_dir()));
    assert_eq!(o.port(), 5432);
    assert_eq!(o.dbname(), "someone", "dbname defaults to the user");
    assert_eq!(o.application_name(), "lockstep");
    assert_eq!(o.sslmode(), SslMode::Prefer);
    assert_eq!(o.connect_timeout(), Some(Duration::from_secs(10)));
    assert_eq!(
        o.sslrootcert(),
        Some(&RootCert::File {
            path: h.path().join(".postgresql/root.crt"),
            explicit: false
        })
    );
    assert!(!o.has_password());
    let o = resolve(
        Some("fallback_application_name=tool"),
        &[("PGUSER", "u")],
        h.path(),
    );
    assert_eq!(o.application_name(), "tool");
    let o = resolve(
        Some("fallback_application_name=tool"),
        &[("PGUSER", "u"), ("PGAPPNAME", "env")],
        h.path(),
    );
    assert_eq!(o.application_name(), "env");
    // Without PGUSER, the user is the OS user's name.
    let o = resolve(None, &[], h.path());
    assert!(!o.user().is_empty());
    assert_eq!(o.dbname(), o.user());
}

#[test]
fn service_files_sit_between_explicit_values_and_the_environment() {
    let h = home();
    let user_file = write(
        &h.path().join("services.conf"),
        "# services\n[other]\nhost=wrong\n\n[app]\nhost=svchost\nport=6000\ndbname=svcdb\napplication_name=svcapp\n\n[later]\nport=1\n",
        0o644,
    );
    let sysconf = h.path().join("sysconf");
    write(
        &sysconf.join("pg_service.conf"),
        "[app]\nuser=systemuser\n[sys]\nhost=syshost\nuser=sysuser\n",
        0o644,
    );
    let user_file = user_file.to_str().expect("utf-8 path");
    let sysconf = sysconf.to_str().expect("utf-8 path");
    let env = [
        ("PGSERVICEFILE", user_file),
        ("PGSYSCONFDIR", sysconf),
        ("PGPORT", "7000"),
        ("PGUSER", "envuser"),
        ("PGAPPNAME", "envapp"),
    ];
    // service= in the string: explicit > service file > environment.
    let o = resolve(Some("service=app dbname=explicit"), &env, h.path());
    assert_eq!(o.service(), Some("app"));
    assert_eq!(o.host(), &Host::Tcp("svchost".into()));
    assert_eq!(o.port(), 6000, "the service file beats PGPORT");
    assert_eq!(o.dbname(), "explicit", "explicit beats the service file");
    assert_eq!(
        o.application_name(),
        "svcapp",
        "the service file beats PGAPPNAME"
    );
    // The section was found in the user's file, so the system file is not read.
    assert_eq!(o.user(), "envuser");

    // PGSERVICE names it too; a section only in the system file is found there.
    let mut with_service = env.to_vec();
    with_service.push(("PGSERVICE", "sys"));
    let o = resolve(None, &with_service, h.path());
    assert_eq!(o.host(), &Host::Tcp("syshost".into()));
    assert_eq!(o.user(), "sysuser");

    // ~/.pg_service.conf when PGSERVICEFILE is not set.
    write(
        &h.path().join(".pg_service.conf"),
        "[home]\nport=6100\n",
        0o600,
    );
    let o = resolve(Some("service=home"), &[], h.path());
    assert_eq!(o.port(), 6100);

    let e = resolve_err(Some("service=nope"), &env, h.path());
    assert!(
        e.to_string()
            .contains("definition of service `nope` not found"),
        "{e}"
    );
    write(&h.path().join("bad.conf"), "[bad]\nservice=app\n", 0o644);
    let bad = h.path().join("bad.conf");
    let e = resolve_err(
        Some("service=bad"),
        &[("PGSERVICEFILE", bad.to_str().expect("utf-8"))],
        h.path(),
    );
    assert!(e.to_string().contains("nested service"), "{e}");
    write(&h.path().join("typo.conf"), "[t]\nhots=x\n", 0o644);
    let typo = h.path().join("typo.conf");
    let e = resolve_err(
        Some("service=t"),
        &[("PGSERVICEFILE", typo.to_str().expect("utf-8"))],
        h.path(),
    );
    assert!(
        e.to_string()
            .contains("unknown connection parameter `hots`")
            && e.to_string().contains("line 2"),
        "{e}"
    );
}

#[test]
fn pgpass_lines_match_like_libpq() {
    let h = home();
    let pgpass = h.path().join(".pgpass");
    let socket_dir = default_socket_dir();
    write(
        &pgpass,
        &format!(
            "# host:port:database:user:password\n\
             db\\:x:5432:*:u:escaped\\:colon\\\\slash\n\
             db.internal:5432:app:*:first\n\
             db.internal:5432:app:*:second\n\
             db.internal:*:*:u:wild\n\
             localhost:5432:*:u:local\n\
             /some/socket/dir:5432:*:u:bysocketpath\n\
             {}:5432:*:bob:neverhere\n",
            socket_dir.display()
        ),
        0o600,
    );
    let pw = |url: &str| {
        let o = resolve(Some(url), &[], h.path());
        (o.has_password(), o.password_source().cloned())
    };
    let from_file = Some(PasswordSource::PassFile(pgpass.clone()));
    // The first matching line wins; `*` matches anything.
    assert_eq!(
        pw("host=db.internal user=u dbname=app"),
        (true, from_file.clone())
    );
    assert_eq!(
        pw("host=db.internal port=9 user=u dbname=z"),
        (true, from_file.clone())
    );
    assert_eq!(pw("host=db.internal port=9 user=v dbname=z"), (false, None));
    // `\:` in a field.
    assert_eq!(pw("host=db:x user=u"), (true, from_file.clone()));
    // `localhost` matches TCP to localhost and the default socket directory, not others.
    assert_eq!(pw("host=localhost user=u"), (true, from_file.clone()));
    assert_eq!(
        pw(&format!("host={} user=u", socket_dir.display())),
        (true, from_file.clone())
    );
    assert_eq!(
        pw("user=u"),
        (true, from_file.clone()),
        "no host: the default socket"
    );
    assert_eq!(
        pw("host=/some/socket/dir user=u"),
        (true, from_file.clone())
    );
    assert_eq!(pw("host=/other/dir user=u"), (false, None));
    // Only used when no password is given.
    assert_eq!(
        pw("host=localhost user=u password=given"),
        (true, Some(PasswordSource::Explicit))
    );

    // Group or world access: ignored, with a warning for the caller.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = resolve(Some("host=localhost user=u"), &[], h.path());
    assert!(!o.has_password());
    assert_eq!(o.warnings().len(), 1);
    assert!(
        o.warnings()[0].contains("group or world access"),
        "{:?}",
        o.warnings()
    );

    // PGPASSFILE points elsewhere.
    let other = write(&h.path().join("pw"), "*:*:*:*:x\n", 0o600);
    let o = resolve(
        Some("host=localhost user=u"),
        &[("PGPASSFILE", other.to_str().expect("utf-8"))],
        h.path(),
    );
    assert_eq!(o.password_source(), Some(&PasswordSource::PassFile(other)));
    assert!(o.warnings().is_empty());
}

// ---------------------------------------------------------------------------------------
// Against servers.

#[tokio::test]
async fn connects_with_each_source_of_parameters() {
    let cluster = start_password_cluster();
    let port = cluster.port().to_string();
    let h = home();
    // A database to connect to, over the (trust) unix socket.
    let admin = connect(&cluster.connect_options("postgres").expect("options")).await;
    admin
        .batch_execute("CREATE DATABASE app")
        .await
        .expect("create database");

    // URL form, password percent-encoded.
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{port}/app?sslmode=disable",
        password_in_url()
    );
    let o = resolve(Some(&url), &[], h.path());
    let c = connect(&o).await;
    assert_eq!(
        one_value(&c, "SELECT current_database()::text").await,
        "app"
    );
    assert_eq!(
        one_value(&c, "SELECT current_setting('application_name')").await,
        "lockstep",
        "application_name defaults to lockstep"
    );
    // `connect` can be called again (the tracer opens a second connection).
    let c2 = connect(&o).await;
    assert_eq!(one_value(&c2, "SELECT 'again'::text").await, "again");

    // Keyword form, password quoted.
    let o = resolve(
        Some(&format!(
            "host=127.0.0.1 port={port} user=postgres password={} dbname=app application_name='mine'",
            password_in_keywords()
        )),
        &[],
        h.path(),
    );
    let c = connect(&o).await;
    assert_eq!(
        one_value(&c, "SELECT current_setting('application_name')").await,
        "mine"
    );

    // Only the environment: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGAPPNAME,
    // PGSSLMODE.
    let o = resolve(
        None,
        &[
            ("PGHOST", "localhost"),
            ("PGPORT", &port),
            ("PGUSER", "postgres"),
            ("PGPASSWORD", PASSWORD),
            ("PGDATABASE", "app"),
            ("PGAPPNAME", "from-env"),
            ("PGSSLMODE", "disable"),
        ],
        h.path(),
    );
    let c = connect(&o).await;
    assert_eq!(
        one_value(
            &c,
            "SELECT current_database() || ' ' || current_setting('application_name')"
        )
        .await,
        "app from-env"
    );

    // PGPASSFILE.
    let passfile = write(
        &h.path().join("pgpass"),
        &format!(
            "127.0.0.1:{port}:app:postgres:{}\n",
            PASSWORD.replace('\\', "\\\\").replace(':', "\\:")
        ),
        0o600,
    );
    let o = resolve(
        Some(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=app"
        )),
        &[("PGPASSFILE", passfile.to_str().expect("utf-8"))],
        h.path(),
    );
    assert_eq!(
        o.password_source(),
        Some(&PasswordSource::PassFile(passfile.clone()))
    );
    connect(&o).await;
    // The password file is consulted again for another database: no line for `postgres`.
    let e = connect_err(&o.with_dbname("postgres")).await;
    assert!(e.contains("asks for a password"), "{e}");

    // PGSERVICE + PGSERVICEFILE, password from the service file.
    let services = write(
        &h.path().join("services"),
        &format!(
            "[db]\nhost=127.0.0.1\nport={port}\nuser=postgres\ndbname=app\npassword={PASSWORD}\napplication_name=svc\n"
        ),
        0o600,
    );
    let o = resolve(
        None,
        &[
            ("PGSERVICE", "db"),
            ("PGSERVICEFILE", services.to_str().expect("utf-8")),
            ("PGSSLMODE", "disable"),
        ],
        h.path(),
    );
    assert_eq!(
        o.password_source(),
        Some(&PasswordSource::ServiceFile(services))
    );
    let c = connect(&o).await;
    assert_eq!(
        one_value(&c, "SELECT current_setting('application_name')").await,
        "svc"
    );

    // Unix socket with sslmode=require: sslmode is ignored for sockets, as in libpq.
    let o = resolve(
        Some(&format!(
            "host={} port={port} user=postgres dbname=app sslmode=require",
            cluster.socket_dir().display()
        )),
        &[],
        h.path(),
    );
    let c = connect(&o).await;
    assert!(!tls(&c).await);

    // prefer against a server without TLS: plain text. require: a clear refusal.
    let o = resolve(
        Some(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=app"
        )),
        &[("PGPASSWORD", PASSWORD)],
        h.path(),
    );
    assert_eq!(o.sslmode(), SslMode::Prefer);
    let c = connect(&o).await;
    assert!(!tls(&c).await, "prefer falls back to plain text");
    let e = connect_err(&resolve(
        Some(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=app sslmode=require"
        )),
        &[("PGPASSWORD", PASSWORD)],
        h.path(),
    ))
    .await;
    assert_eq!(
        e,
        format!("cannot connect to postgres@127.0.0.1:{port}/app: the server does not support TLS, and sslmode=require requires it")
    );
}

#[tokio::test]
async fn failures_are_one_clear_line_without_the_password() {
    let cluster = start_password_cluster();
    let port = cluster.port();
    let h = home();

    // Wrong password.
    let wrong = format!("{PASSWORD}-wrong");
    let o = resolve(
        Some(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable"
        )),
        &[("PGPASSWORD", &wrong)],
        h.path(),
    );
    let e = o.connect().await.expect_err("wrong password");
    assert!(
        matches!(e, ConnectError::Server { ref code, .. } if *code == SqlState::INVALID_PASSWORD),
        "{e:?}"
    );
    assert_eq!(
        checked(&e),
        format!("cannot connect to postgres@127.0.0.1:{port}/postgres: password authentication failed for user \"postgres\"")
    );

    // No password at all.
    let o = resolve(
        Some(&format!(
            "host=127.0.0.1 port={port} user=postgres sslmode=disable"
        )),
        &[],
        h.path(),
    );
    let e = connect_err(&o).await;
    assert!(
        e.contains("the server asks for a password and none was given"),
        "{e}"
    );

    // A database that does not exist.
    let o = resolve(
        Some(&format!(
            "postgres://postgres:{}@127.0.0.1:{port}/nope?sslmode=disable",
            password_in_url()
        )),
        &[],
        h.path(),
    );
    let e = connect_err(&o).await;
    assert_eq!(
        e,
        format!(
            "cannot connect to postgres@127.0.0.1:{port}/nope: database \"nope\" does not exist"
        )
    );

    // A closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let o = resolve(
        Some(&format!(
            "postgres://postgres:{}@127.0.0.1:{closed}/app",
            password_in_url()
        )),
        &[],
        h.path(),
    );
    let e = o.connect().await.expect_err("closed port");
    assert!(matches!(e, ConnectError::Refused { .. }), "{e:?}");
    assert_eq!(
        checked(&e),
        format!("cannot connect to postgres@127.0.0.1:{closed}/app: connection refused (is the server running on that host and accepting TCP connections on port {closed}?)")
    );

    // No socket in a directory.
    let o = resolve(
        Some(&format!(
            "host={} port={closed} user=postgres",
            h.path().display()
        )),
        &[("PGPASSWORD", PASSWORD)],
        h.path(),
    );
    let e = connect_err(&o).await;
    assert!(
        e.contains("no server is listening on socket") && e.contains(&format!(".s.PGSQL.{closed}")),
        "{e}"
    );

    // A server that accepts TCP but never answers: connect_timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let o = resolve(
        Some(&format!(
            "host=127.0.0.1 port={silent_port} user=postgres sslmode=disable connect_timeout=2"
        )),
        &[("PGPASSWORD", PASSWORD)],
        h.path(),
    );
    let started = Instant::now();
    let e = o.connect().await.expect_err("silent server");
    // It waited for the timeout (a lower bound holds on a busy machine too).
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        matches!(e, ConnectError::Timeout { seconds: 2, .. }),
        "{e:?}"
    );
    assert_eq!(
        checked(&e),
        format!("cannot connect to postgres@127.0.0.1:{silent_port}/postgres: timed out after 2s (connect_timeout)")
    );
    drop(silent);

    // Debug and describe of options holding the password.
    let o = resolve(
        Some(&format!(
            "postgres://postgres:{}@127.0.0.1:{port}/postgres",
            password_in_url()
        )),
        &[],
        h.path(),
    );
    assert!(format!("{o:?}").contains("<redacted>"));
    assert_eq!(
        o.describe(),
        format!("postgres@127.0.0.1:{port}/postgres (sslmode=prefer)")
    );
}

// ---------------------------------------------------------------------------------------
// TLS.

/// A CA (ECDSA P-256, self-signed) valid for the test.
fn ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A server certificate for `localhost` and 127.0.0.1, signed by the CA: (cert, key) PEM.
fn server_cert(ca: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A server with a password and a certificate from a CA made here; that CA, and another.
fn tls_server() -> (
    TempCluster,
    CertifiedIssuer<'static, KeyPair>,
    CertifiedIssuer<'static, KeyPair>,
) {
    let ca_cert = ca("lockstep test CA");
    let wrong_ca = ca("some other CA");
    let (cert, key) = server_cert(&ca_cert);
    let cluster = TempCluster::builder()
        .password(PASSWORD)
        .ssl(cert, key)
        .start()
        .expect("a throwaway PostgreSQL with TLS must start for this test");
    (cluster, ca_cert, wrong_ca)
}

/// Logical capture's replication connection speaks the start-up, TLS and SCRAM itself: the
/// same parameters must give the same connection (or the same clear refusal).
#[tokio::test]
async fn a_replication_connection_follows_the_same_sslmode_and_password_rules() {
    let (cluster, ca_cert, wrong_ca) = tls_server();
    let port = cluster.port();
    let h = home();
    let files = home();
    let right_root = write(&files.path().join("root.crt"), &ca_cert.pem(), 0o644);
    let wrong_root = write(&files.path().join("wrong.crt"), &wrong_ca.pem(), 0o644);
    let opts = |params: &str, password: &str| {
        resolve(
            Some(&format!(
                "port={port} dbname=postgres user=postgres {params}"
            )),
            &[("PGPASSWORD", password)],
            h.path(),
        )
    };
    let watcher = connect(&opts("host=127.0.0.1", PASSWORD)).await;
    // Whether the open replication connection uses TLS, as the server sees it.
    let walsender_tls = || async {
        one_value(
            &watcher,
            "SELECT coalesce(bool_and(s.ssl), false)::text FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'walsender'",
        )
        .await
    };
    for (params, tls) in [
        ("host=127.0.0.1 sslmode=disable", "false"),
        ("host=127.0.0.1", "true"),
        ("host=127.0.0.1 sslmode=require", "true"),
        (
            &*format!(
                "host=localhost sslmode=verify-full sslrootcert={}",
                right_root.display()
            ),
            "true",
        ),
    ] {
        let mut r = opts(params, PASSWORD)
            .connect_replication()
            .await
            .unwrap_or_else(|e| panic!("{params}: {}", checked(&e)));
        let rows = r.command("IDENTIFY_SYSTEM").await.unwrap();
        assert_eq!(rows.len(), 1, "{params}");
        assert_eq!(
            rows[0].len(),
            4,
            "{params}: systemid, timeline, xlogpos, dbname"
        );
        assert_eq!(rows[0][3].as_deref(), Some("postgres"), "{params}");
        assert_eq!(walsender_tls().await, tls, "{params}");
        drop(r);
        wait_for_no_walsender(&watcher).await;
    }
    // The older password methods: md5 (a role whose password is stored as md5) and
    // `password` (cleartext, here over TLS), each for a role of its own in pg_hba.conf.
    let quoted = PASSWORD.replace('\'', "''");
    watcher
        .batch_execute(&format!(
            "SET password_encryption = 'md5';
             CREATE ROLE r_md5 LOGIN REPLICATION PASSWORD '{quoted}';
             SET password_encryption = 'scram-sha-256';
             CREATE ROLE r_clear LOGIN REPLICATION PASSWORD '{quoted}';"
        ))
        .await
        .unwrap();
    let hba = one_value(&watcher, "SHOW hba_file").await;
    let before = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "host all r_md5 127.0.0.1/32 md5\nhost all r_clear 127.0.0.1/32 password\n{before}"
        ),
    )
    .unwrap();
    watcher
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    let methods = "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules WHERE 'r_md5' = ANY(user_name) OR 'r_clear' = ANY(user_name)";
    let start = Instant::now();
    while one_value(&watcher, methods).await != "md5,password" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pg_hba.conf not read"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (user, params) in [
        ("r_md5", "host=127.0.0.1 sslmode=disable"),
        ("r_clear", "host=127.0.0.1 sslmode=require"),
    ] {
        let role = |password: &str| {
            resolve(
                Some(&format!("port={port} dbname=postgres user={user} {params}")),
                &[("PGPASSWORD", password)],
                h.path(),
            )
        };
        let mut r = role(PASSWORD)
            .connect_replication()
            .await
            .unwrap_or_else(|e| panic!("{user}: {}", checked(&e)));
        let rows = r.command("IDENTIFY_SYSTEM").await.unwrap();
        assert_eq!(rows[0][3].as_deref(), Some("postgres"), "{user}");
        drop(r);
        wait_for_no_walsender(&watcher).await;
        refused_for_the_password(role("not the password"), user).await;
    }
    std::fs::write(&hba, before).unwrap();
    watcher
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    // A certificate from another CA, a wrong password, none at all: refused, clearly, and
    // without the password in the message.
    let e = opts(
        &format!(
            "host=localhost sslmode=verify-full sslrootcert={}",
            wrong_root.display()
        ),
        PASSWORD,
    )
    .connect_replication()
    .await
    .err()
    .expect("a certificate from another CA");
    assert!(matches!(e, ConnectError::Tls { .. }), "{}", checked(&e));
    refused_for_the_password(opts("host=127.0.0.1", "not the password"), "postgres").await;
    let no_password = resolve(
        Some(&format!(
            "host=127.0.0.1 port={port} dbname=postgres user=postgres"
        )),
        &[],
        h.path(),
    );
    let e = no_password
        .connect_replication()
        .await
        .err()
        .expect("no password");
    assert!(
        matches!(e, ConnectError::PasswordRequired { .. }),
        "{}",
        checked(&e)
    );
    // Nothing listens on a port that nothing listens on.
    let e = resolve(
        Some("host=127.0.0.1 port=1 dbname=postgres user=postgres"),
        &[],
        h.path(),
    )
    .connect_replication()
    .await
    .err()
    .expect("nothing on port 1");
    assert!(matches!(e, ConnectError::Refused { .. }), "{}", checked(&e));
}

/// Waits until the server has no WAL sender left (a dropped replication connection ends
/// its server process a moment later).
async fn wait_for_no_walsender(c: &Client) {
    let start = Instant::now();
    while one_value(
        c,
        "SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'walsender'",
    )
    .await
        != "0"
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a WAL sender stays"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_sslmode_against_a_tls_server() {
    let (cluster, ca_cert, wrong_ca) = tls_server();
    let port = cluster.port();
    let h = home(); // no ~/.postgresql/root.crt (yet)
    let files = home();
    let right_root = write(&files.path().join("root.crt"), &ca_cert.pem(), 0o644);
    let wrong_root = write(&files.path().join("wrong.crt"), &wrong_ca.pem(), 0o644);
    let env = [("PGPASSWORD", PASSWORD), ("PGUSER", "postgres")];
    let opts = |params: &str| {
        resolve(
            Some(&format!("port={port} dbname=postgres {params}")),
            &env,
            h.path(),
        )
    };
    let right = right_root.display();
    let wrong = wrong_root.display();

    // disable: plain text.
    let c = connect(&opts("host=127.0.0.1 sslmode=disable")).await;
    assert!(!tls(&c).await);
    // prefer (the default): TLS, nothing verified.
    let c = connect(&opts("host=127.0.0.1")).await;
    assert!(tls(&c).await);
    // require: TLS, nothing verified when there is no root certificate file...
    let c = connect(&opts("host=127.0.0.1 sslmode=require")).await;
    assert!(tls(&c).await);
    let c = connect(&opts(
        "host=127.0.0.1 sslmode=require sslrootcert=/no/such/root.crt",
    ))
    .await;
    assert!(tls(&c).await);
    // ... but like verify-ca when there is one (libpq).
    let e = connect_err(&opts(&format!(
        "host=127.0.0.1 sslmode=require sslrootcert={wrong}"
    )))
    .await;
    assert!(
        e.contains("the server's certificate failed verification (sslmode=require"),
        "{e}"
    );
    let c = connect(&opts(&format!(
        "host=127.0.0.1 sslmode=require sslrootcert={right}"
    )))
    .await;
    assert!(tls(&c).await);
    // PGSSLMODE.
    let o = resolve(
        Some(&format!("host=127.0.0.1 port={port} dbname=postgres")),
        &[
            ("PGPASSWORD", PASSWORD),
            ("PGUSER", "postgres"),
            ("PGSSLMODE", "require"),
        ],
        h.path(),
    );
    assert_eq!(o.sslmode(), SslMode::Require);
    assert!(tls(&connect(&o).await).await);

    // verify-ca: the chain against the right root passes, against another fails.
    let c = connect(&opts(&format!(
        "host=127.0.0.1 sslmode=verify-ca sslrootcert={right}"
    )))
    .await;
    assert!(tls(&c).await);
    let e = connect_err(&opts(&format!(
        "host=127.0.0.1 sslmode=verify-ca sslrootcert={wrong}"
    )))
    .await;
    assert!(
        e.starts_with(&format!("cannot connect to postgres@127.0.0.1:{port}/postgres: the server's certificate failed verification (sslmode=verify-ca, root certificates from {wrong}): ")),
        "{e}"
    );
    // verify-ca does not check the host name.
    let c = connect(&opts(&format!(
        "host=not-in-the-cert.test hostaddr=127.0.0.1 sslmode=verify-ca sslrootcert={right}"
    )))
    .await;
    assert!(tls(&c).await);
    // No root certificate: a clear error before connecting.
    let e = connect_err(&opts("host=127.0.0.1 sslmode=verify-ca")).await;
    assert!(
        e.contains("root certificate file") && e.contains(".postgresql/root.crt does not exist"),
        "{e}"
    );

    // verify-full: the name must be in the certificate.
    let c = connect(&opts(&format!(
        "host=localhost sslmode=verify-full sslrootcert={right}"
    )))
    .await;
    assert!(tls(&c).await);
    let c = connect(&opts(&format!(
        "host=127.0.0.1 sslmode=verify-full sslrootcert={right}"
    )))
    .await;
    assert!(tls(&c).await, "127.0.0.1 is an IP SAN of the certificate");
    let e = connect_err(&opts(&format!(
        "host=not-in-the-cert.test hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={right}"
    )))
    .await;
    assert!(
        e.contains("failed verification (sslmode=verify-full")
            && e.contains("the certificate does not name host `not-in-the-cert.test`"),
        "{e}"
    );
    let e = connect_err(&opts(&format!(
        "host=localhost sslmode=verify-full sslrootcert={wrong}"
    )))
    .await;
    assert!(e.contains("failed verification"), "{e}");

    // The default root certificate file, ~/.postgresql/root.crt.
    write(
        &h.path().join(".postgresql/root.crt"),
        &ca_cert.pem(),
        0o644,
    );
    let c = connect(&opts("host=localhost sslmode=verify-full")).await;
    assert!(tls(&c).await);
    // A wrong one there makes `require` fail, as in libpq.
    write(
        &h.path().join(".postgresql/root.crt"),
        &wrong_ca.pem(),
        0o644,
    );
    let e = connect_err(&opts("host=127.0.0.1 sslmode=require")).await;
    assert!(e.contains("failed verification"), "{e}");
    // prefer never verifies.
    let c = connect(&opts("host=127.0.0.1 sslmode=prefer")).await;
    assert!(tls(&c).await);
    // allow: treated like prefer, with a warning.
    let o = opts("host=127.0.0.1 sslmode=allow");
    assert_eq!(o.warnings().len(), 1);
    assert!(tls(&connect(&o).await).await);
    // The system's roots do not know the test CA: refused, and the message says whose roots.
    let e = connect_err(&opts("host=localhost sslrootcert=system")).await;
    assert!(
        e.contains("failed verification (sslmode=verify-full, the system's root certificates): the certificate is not signed by a trusted root certificate"),
        "{e}"
    );
    // SCRAM channel binding over TLS (tls-server-end-point) works, and is refused without TLS.
    let c = connect(&opts(&format!(
        "host=localhost sslmode=verify-full sslrootcert={right} channel_binding=require"
    )))
    .await;
    assert!(tls(&c).await);
    let e = connect_err(&opts(
        "host=127.0.0.1 sslmode=disable channel_binding=require",
    ))
    .await;
    assert!(
        e.starts_with("cannot connect to postgres@127.0.0.1:"),
        "{e}"
    );
    // A root certificate file that holds no certificate is named.
    let empty = write(
        &files.path().join("empty.crt"),
        "not a certificate\n",
        0o644,
    );
    let e = connect_err(&opts(&format!(
        "host=localhost sslmode=verify-full sslrootcert={}",
        empty.display()
    )))
    .await;
    assert!(
        e.contains(&format!(
            "root certificate file {} holds no PEM certificate",
            empty.display()
        )),
        "{e}"
    );
}

/// A TCP server on a free port that, for every connection, greets with `greeting` (when
/// given) and answers whatever it reads with `answer`, then closes.
fn fake_server(greeting: Option<&'static [u8]>, answer: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            if let Some(g) = greeting {
                let _ = s.write_all(g);
            }
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer);
        }
    });
    port
}

#[tokio::test]
async fn a_server_that_is_not_postgresql_is_named_as_such() {
    let h = home();
    for (greeting, answer, seen) in [
        (
            Some(&b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"[..]),
            &b""[..],
            "it greeted with `SSH-2.0-OpenSSH_9.2p1 Debian-2`",
        ),
        (
            None,
            &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..],
            "it answered `HTTP/1.1 400 Bad Request`",
        ),
        (
            None,
            &b""[..],
            "closed the connection without answering the PostgreSQL handshake",
        ),
    ] {
        let port = fake_server(greeting, answer);
        for sslmode in ["disable", "prefer", "require"] {
            let url =
                format!("postgres://app@127.0.0.1:{port}/db?sslmode={sslmode}&connect_timeout=10");
            let o = resolve(Some(&url), &[], h.path());
            let e = connect_err(&o).await;
            assert!(
                e.starts_with(&format!("cannot connect to app@127.0.0.1:{port}/db: "))
                    && e.contains(seen)
                    && e.contains("is the host or the port wrong?"),
                "sslmode={sslmode}: {e}"
            );
        }
    }
}
