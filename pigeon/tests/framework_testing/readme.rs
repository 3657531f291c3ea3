use std::{collections::HashMap, sync::Arc, time::Duration};

use pigeon::{codec::ReasonCode, prelude::*, testing::Test};

#[derive(serde::Deserialize)]
struct Temp {
    celsius: f64,
}

/// The users who may connect (in production: loaded from a database).
#[injectable]
struct UserStore {
    #[inject(default)]
    passwords: HashMap<String, String>,
}

#[injectable]
struct Thermostat {
    pigeon: PigeonService,
    users: Arc<UserStore>,
}

#[handlers]
impl Thermostat {
    #[on_authenticate]
    async fn login(&self, credential: Credential) -> Result<(), AuthError> {
        let user = credential.username.unwrap_or_default();
        let known = self.users.passwords.get(&user).map(|p| p.as_bytes());
        match (known, credential.password.as_deref()) {
            (Some(known), Some(given)) if known == given => Ok(()),
            _ => Err(AuthError::bad_credentials("who are you?")),
        }
    }

    #[on_publish("sensors/:id/temp")]
    async fn temp(&self, Param(id): Param<String>, Json(t): Json<Temp>) {
        if t.celsius > 30.0 {
            let alert = Publish::new(format!("alerts/{id}"), QoS::AtLeastOnce, "hot");
            let _ = self.pigeon.publish(alert).await;
        }
    }
}

#[module(providers = [UserStore, Thermostat])]
struct AppModule;

#[tokio::test]
async fn a_hot_sensor_raises_an_alert() {
    let users = UserStore {
        passwords: HashMap::from([("ops".into(), "pw".into()), ("s7".into(), "pw".into())]),
    };
    let app = Test::module::<AppModule>()
        .override_provider::<UserStore>(users)
        .start()
        .await
        .unwrap();

    let ops = app
        .client("ops")
        .credentials("ops", "pw")
        .connect()
        .await
        .unwrap();
    ops.subscribe("alerts/#", QoS::AtLeastOnce).await.unwrap();
    let sensor = app
        .client("s7")
        .v311()
        .credentials("s7", "pw")
        .connect()
        .await
        .unwrap();
    sensor
        .publish("sensors/7/temp", r#"{"celsius": 31.5}"#)
        .await
        .unwrap();

    let alert = ops.expect_message(Duration::from_secs(1)).await;
    assert_eq!((alert.topic.as_str(), alert.text()), ("alerts/7", "hot"));

    let err = app
        .client("eve")
        .credentials("eve", "pw")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ReasonCode::BadUserNameOrPassword));
    app.close().await;
}
