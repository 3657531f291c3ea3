//! `Pigeon::bootstrap` reads the process's own environment: `PIGEON_CONFIG`
//! names the file, `PIGEON_*` variables set options and settings. The only
//! test that sets process variables, alone in its binary and before any
//! thread is started, so that nothing reads the environment while it changes.

use std::time::Duration;

use pigeon::prelude::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet as Pk};

#[derive(serde::Deserialize)]
struct Banner {
    text: String,
    width: u16,
}

impl Section for Banner {
    const NAME: &'static str = "banner";
}

#[injectable]
struct Sign {
    banner: Settings<Banner>,
}

/// Port 1884 unless the environment says otherwise (it does: 0).
#[module(port = 1884, providers = [Sign])]
struct AppModule;

#[test]
fn bootstrap_reads_the_process_environment() {
    let dir = std::env::temp_dir().join(format!("pigeon-config-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pigeon.toml");
    std::fs::write(
        &file,
        "host = \"127.0.0.1\"\n[banner]\ntext = \"from the file\"\nwidth = 10\n",
    )
    .unwrap();
    // Edition 2021: safe, and no other thread exists yet.
    std::env::set_var("PIGEON_CONFIG", &file);
    std::env::set_var("PIGEON_PORT", "0");
    std::env::set_var("PIGEON_BANNER__WIDTH", "80");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = Pigeon::bootstrap::<AppModule>().await.unwrap();
        let addr = app.local_addr();
        assert_eq!(addr.ip().to_string(), "127.0.0.1", "the file's host");
        assert_ne!(addr.port(), 1884, "PIGEON_PORT=0 over the module's 1884");
        let sign = app.get::<Sign>().unwrap();
        assert_eq!(sign.banner.text, "from the file");
        assert_eq!(sign.banner.width, 80, "PIGEON_BANNER__WIDTH over the file");
        // It listens where it says.
        let (_c, mut ev) = AsyncClient::new(MqttOptions::new("env", "127.0.0.1", addr.port()), 8);
        let connected = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Event::Incoming(Pk::ConnAck(_)) = ev.poll().await.unwrap() {
                    return;
                }
            }
        })
        .await;
        assert!(connected.is_ok(), "no CONNACK from {addr}");
        app.close().await;
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
