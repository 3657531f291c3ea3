//! Configuration at run time: `Pigeon::bootstrap` reads, over the module's
//! options, a TOML file (`PIGEON_CONFIG`, else the module's `config_file`) and
//! the `PIGEON_*` variables, with the standalone binary's keys and errors, and
//! the application's own sections into `Settings<T>` fields. The environment
//! is given as a list (`bootstrap_with_env`), so tests run in parallel; the
//! one test of the process's own variables is `framework_config_env.rs`.

use std::{path::PathBuf, time::Duration};

use pigeon::{prelude::*, BootstrapError};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet as Pk, QoS as Q};
use tokio::time::timeout;

#[derive(Debug, serde::Deserialize)]
struct GreeterSettings {
    text: String,
    #[serde(default = "once")]
    times: u32,
    #[serde(default)]
    tags: Vec<String>,
}

fn once() -> u32 {
    1
}

impl Section for GreeterSettings {
    const NAME: &'static str = "greeter";
}

/// Answers a publish to `hello` with its configured greeting on `greetings`.
#[injectable]
struct Greeter {
    pigeon: PigeonService,
    settings: Settings<GreeterSettings>,
}

#[handlers]
impl Greeter {
    #[on_publish("hello")]
    async fn hello(&self) {
        let s = &self.settings;
        let text = format!("{} x{} {:?}", s.text, s.times, s.tags);
        let _ = self
            .pigeon
            .publish(Publish::new("greetings", QoS::AtLeastOnce, text))
            .await;
    }
}

#[module(
    host = "127.0.0.1",
    port = 0,
    topic_alias_maximum = 4,
    receive_maximum = 4,
    max_packet_size = 4000,
    providers = [Greeter]
)]
struct AppModule;

/// Reads `tests/framework_config/app.toml` (relative to the package, where
/// `cargo test` runs).
#[module(
    host = "127.0.0.1",
    port = 0,
    config_file = "tests/framework_config/app.toml",
    providers = [Greeter]
)]
struct FileModule;

/// Names a file that does not exist: the module's options alone.
#[module(
    port = 0,
    queue_limit = 9,
    config_file = "tests/framework_config/missing.toml",
    providers = []
)]
struct PlainModule;

/// A config file of one test, named after it; removed when dropped.
struct File(PathBuf);

impl std::ops::Deref for File {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file(name: &str, text: &str) -> File {
    let path = std::env::temp_dir().join(format!(
        "pigeon-framework-config-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    File(path)
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config_var(path: &std::path::Path) -> (String, String) {
    ("PIGEON_CONFIG".into(), path.display().to_string())
}

/// The error `load_config` gives for the environment `vars`.
fn config_error(vars: Vec<(String, String)>) -> String {
    match Pigeon::load_config::<PlainModule>(vars) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => {
            assert!(matches!(e, BootstrapError::Config(_)), "{e:?}");
            e.to_string()
        }
    }
}

/// Starts `M` and returns the error it fails with.
async fn start_error<M: Module>(vars: Vec<(String, String)>) -> String {
    match Pigeon::bootstrap_with_env::<M>(vars, |_| {}).await {
        Ok(_) => panic!("started"),
        Err(e) => {
            assert!(matches!(e, BootstrapError::Config(_)), "{e:?}");
            e.to_string()
        }
    }
}

/// Connects over MQTT 5 and returns the CONNACK's properties.
async fn connack(addr: std::net::SocketAddr) -> rumqttc::v5::mqttbytes::v5::ConnAckProperties {
    use rumqttc::v5::{
        mqttbytes::v5::Packet as P5, AsyncClient as C5, Event as E5, MqttOptions as O5,
    };
    let (_c, mut ev) = C5::new(O5::new("v5-limits", addr.ip().to_string(), addr.port()), 8);
    let ack = timeout(Duration::from_secs(5), async {
        loop {
            if let E5::Incoming(P5::ConnAck(ack)) = ev.poll().await.unwrap() {
                return ack;
            }
        }
    })
    .await
    .expect("a CONNACK in time");
    ack.properties.expect("CONNACK properties")
}

/// Publishes to `hello` and returns what arrives on `greetings`.
async fn greeting(addr: std::net::SocketAddr) -> String {
    let (c, mut ev) = AsyncClient::new(
        MqttOptions::new("greeted", addr.ip().to_string(), addr.port()),
        8,
    );
    c.subscribe("greetings", Q::AtLeastOnce).await.unwrap();
    timeout(Duration::from_secs(5), async {
        loop {
            match ev.poll().await.unwrap() {
                Event::Incoming(Pk::SubAck(_)) => {
                    c.publish("hello", Q::AtMostOnce, false, "").await.unwrap();
                }
                Event::Incoming(Pk::Publish(p)) => {
                    return String::from_utf8(p.payload.to_vec()).unwrap();
                }
                _ => {}
            }
        }
    })
    .await
    .expect("a greeting in time")
}

#[tokio::test]
async fn file_then_environment_then_code_over_the_modules_options() {
    let path = file(
        "layers",
        "receive_maximum = 5\nmax_packet_size = 5000\nmaximum_qos = 2\n\
         [greeter]\ntext = \"from the file\"\ntimes = 1\ntags = [\"file\"]\n",
    );
    let mut vars = env(&[
        ("PIGEON_MAX_PACKET_SIZE", "6000"),
        ("PIGEON_MAXIMUM_QOS", "0"),
        ("PIGEON_GREETER__TIMES", "2"),
        ("PIGEON_GREETER__TAGS", "env,var"),
        ("PIGEON_GREETER__TEXT", "from the environment"),
    ]);
    vars.push(config_var(&path));
    let app = Pigeon::bootstrap_with_env::<AppModule>(vars, |c| {
        c.maximum_qos = QoS::AtLeastOnce;
        c.sections
            .set("greeter", serde_json::json!({ "text": "from code" }));
    })
    .await
    .unwrap();
    let limits = connack(app.local_addr()).await;
    assert_eq!(limits.topic_alias_max, Some(4), "the module's");
    assert_eq!(limits.receive_max, Some(5), "the file's over the module's");
    assert_eq!(
        limits.max_packet_size,
        Some(6000),
        "the variable's over the file's"
    );
    assert_eq!(limits.max_qos, Some(1), "the code's over the variable's");
    // The section: code < environment < file, key by key.
    assert_eq!(
        greeting(app.local_addr()).await,
        r#"from code x2 ["env", "var"]"#
    );
    app.close().await;
}

#[tokio::test]
async fn a_settings_section_of_the_file_is_injected_into_a_provider() {
    let path = file(
        "section",
        "[greeter]\ntext = \"hello\"\ntags = [\"a\", \"b\"]\n",
    );
    let app = Pigeon::bootstrap_with_env::<AppModule>([config_var(&path)], |_| {})
        .await
        .unwrap();
    let greeter = app.get::<Greeter>().unwrap();
    assert_eq!(greeter.settings.times, 1, "a serde default");
    assert_eq!(greeting(app.local_addr()).await, r#"hello x1 ["a", "b"]"#);
    app.close().await;
}

#[tokio::test]
async fn the_modules_config_file_is_read_when_it_exists() {
    let no_env: [(&str, &str); 0] = [];
    let app = Pigeon::bootstrap_with_env::<FileModule>(no_env, |_| {})
        .await
        .unwrap();
    assert_eq!(connack(app.local_addr()).await.receive_max, Some(5));
    assert_eq!(
        greeting(app.local_addr()).await,
        "hello from the module's file x1 []"
    );
    app.close().await;
    // A config_file that does not exist is no error: the module's options stay.
    let config = Pigeon::load_config::<PlainModule>(no_env).unwrap();
    assert_eq!(config.queue_limit, 9);
    // PIGEON_CONFIG names another file, in place of the module's.
    let path = file("instead", "queue_limit = 3\n");
    let config = Pigeon::load_config::<PlainModule>([config_var(&path)]).unwrap();
    assert_eq!(config.queue_limit, 3);
}

#[tokio::test]
async fn a_bad_file_is_an_error_naming_the_file_and_the_key() {
    let cases = [
        ("syntax", "queue_limit = = 3\n", "is not valid TOML: line 1:"),
        (
            "typo",
            "queue_limt = 3\n",
            "unknown key `queue_limt` in {} (did you mean `queue_limit`?)",
        ),
        (
            "type",
            "queue_limit = \"many\"\n",
            "invalid value for --queue-limit / queue_limit in {}: invalid type: string \"many\", expected usize",
        ),
        (
            "range",
            "queue_limit = 0\n",
            "invalid value for --queue-limit / queue_limit in {}: 0 (must be at least 1)",
        ),
        (
            "scalar",
            "greeter = 1\n",
            "unknown key `greeter` in {}",
        ),
    ];
    for (name, text, want) in cases {
        let path = file(name, text);
        let message = config_error(vec![config_var(&path)]);
        let want = want.replace("{}", &path.display().to_string());
        assert!(message.starts_with("configuration: "), "{message}");
        assert!(message.contains(&want), "{name}: {message}\nwanted: {want}");
    }
    // A file PIGEON_CONFIG names must exist.
    let missing = std::env::temp_dir().join("pigeon-no-such-config.toml");
    let message = config_error(vec![(
        "PIGEON_CONFIG".into(),
        missing.display().to_string(),
    )]);
    assert!(
        message.starts_with(&format!(
            "configuration: cannot read config file {}",
            missing.display()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_bad_variable_is_an_error_naming_it() {
    assert_eq!(
        config_error(env(&[("PIGEON_QUEUE_LIMIT", "abc")])),
        r#"configuration: invalid value for PIGEON_QUEUE_LIMIT: abc (invalid type: string "abc", expected usize)"#
    );
    assert_eq!(
        config_error(env(&[("PIGEON_QUEUE_LIMIT", "0")])),
        "configuration: invalid value for PIGEON_QUEUE_LIMIT: 0 (must be at least 1)"
    );
}

#[tokio::test]
async fn a_section_that_does_not_deserialize_names_the_file_section_and_key() {
    let path = file(
        "bad-section",
        "[greeter]\ntext = \"hi\"\ntimes = \"many\"\n",
    );
    let shown = path.display().to_string();
    assert_eq!(
        start_error::<AppModule>(vec![config_var(&path)]).await,
        format!(
            "configuration: invalid settings section [greeter] in {shown}: key `times`: \
             invalid type: string \"many\", expected u32"
        )
    );
    let path = file("no-text", "[greeter]\ntimes = 2\n");
    let shown = path.display().to_string();
    assert_eq!(
        start_error::<AppModule>(vec![config_var(&path)]).await,
        format!(
            "configuration: invalid settings section [greeter] in {shown}: missing field `text`"
        )
    );
    assert_eq!(
        start_error::<AppModule>(Vec::new()).await,
        "configuration: invalid settings section [greeter] (no config file): missing field `text`"
    );
    // A key set in code is said to be.
    let vars = env(&[("PIGEON_GREETER__TEXT", "hi")]);
    let set_in_code = |c: &mut Config| {
        c.sections
            .set("greeter", serde_json::json!({ "times": -1 }))
    };
    match Pigeon::bootstrap_with_env::<AppModule>(vars, set_in_code).await {
        Err(e) => assert_eq!(
            e.to_string(),
            "configuration: invalid settings section [greeter] (set in code): key `times`: \
             invalid value: integer `-1`, expected u32"
        ),
        Ok(_) => panic!("started with times = -1"),
    }
    // A variable's value that fits no reading is named by the variable.
    assert_eq!(
        start_error::<AppModule>(env(&[
            ("PIGEON_GREETER__TEXT", "hi"),
            ("PIGEON_GREETER__TIMES", "abc")
        ]))
        .await,
        r#"configuration: invalid value for PIGEON_GREETER__TIMES: abc (invalid type: string "abc", expected u32)"#
    );
}

#[tokio::test]
async fn a_table_no_provider_reads_is_an_error_suggesting_the_section() {
    let path = file(
        "typo-section",
        "[greeter]\ntext = \"hi\"\n[greeterr]\ntext = \"hi\"\n",
    );
    let shown = path.display().to_string();
    assert_eq!(
        start_error::<AppModule>(vec![config_var(&path)]).await,
        format!(
            "configuration: unknown section [greeterr] in {shown}: no broker option and no \
             provider's settings (`Settings<T>` with `T::NAME = \"greeterr\"`) (did you mean [greeter]?)"
        )
    );
}
