//! A real change-data-capture pipeline: rows written to PostgreSQL, captured by Debezium's
//! PostgreSQL connector in a Kafka Connect worker, read by pipewatch from the JSON envelope
//! Connect's JSON converter writes (`/payload/after/created_at`, a
//! `io.debezium.time.ZonedTimestamp` string). A delete has no `after` (its row is gone:
//! `missing_field` for that pointer); the tombstone after it is `empty_payload`; neither
//! moves the watermark or stops the stream.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_change_events_give_the_rows_event_times_and_deletes_are_counted_not_errors() {
    let (bootstrap, pg, connect) = (broker().await, postgres().await, connect().await);
    let table = unique_topic("orders").replace('-', "_");
    pg.sql(&format!(
        "CREATE TABLE {table} (id serial PRIMARY KEY, channel text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO {table} (channel) VALUES ('web'), ('app'), ('web');"
    ));
    let prefix = unique_topic("shop").replace('-', "_");
    let name = format!("{prefix}-cdc");
    connect.create(&name, debezium_postgres(pg, &prefix, &table)).await;
    let topic = format!("{prefix}.public.{table}");
    let body = debezium_stream(&topic, r#"segments = [{ name = "channel", field = "/payload/after/channel" }]"#);
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    // the snapshot's three rows, then two written while the connector streams
    eventually("the snapshot read", Duration::from_secs(90), || async {
        let st = stream_status(&pw.status().await, "orders");
        if st["records"].as_u64() == Some(3) {
            Ok(())
        } else {
            Err(format!("{} / connector {}", st, connect.status(&name).await))
        }
    })
    .await;
    pg.sql(&format!("INSERT INTO {table} (channel) VALUES ('app'), ('web');"));
    let newest = pg.sql(&format!("SELECT floor(extract(epoch FROM max(created_at)) * 1000)::bigint FROM {table}"));
    let newest: i64 = newest.parse().unwrap();
    let st =
        eventually("the new rows read, their event time the rows' created_at", Duration::from_secs(30), || async {
            let st = stream_status(&pw.status().await, "orders");
            match (st["records"].as_u64(), st["watermark_ms"].as_i64(), st["cause"].as_str()) {
                (Some(5), Some(w), Some("ok")) if w == newest => Ok(st),
                _ => Err(st.to_string()),
            }
        })
        .await;
    let values: Vec<(String, u64)> = st["segments"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["value"].as_str().unwrap().to_string(), v["records"].as_u64().unwrap()))
        .collect();
    assert_eq!(values, [("web".to_string(), 3), ("app".to_string(), 2)]);
    // a delete: its change event has no `after`, then Debezium writes a tombstone
    pg.sql(&format!("DELETE FROM {table} WHERE id = 1;"));
    let st = eventually("the delete and its tombstone counted", Duration::from_secs(30), || async {
        let st = stream_status(&pw.status().await, "orders");
        if st["records"].as_u64() == Some(7) {
            Ok(st)
        } else {
            Err(st.to_string())
        }
    })
    .await;
    assert_eq!(
        (st["invalid"]["missing_field"].as_u64(), st["invalid"]["empty_payload"].as_u64()),
        (Some(1), Some(1)),
        "{st}"
    );
    assert_eq!((st["watermark_ms"].as_i64(), st["cause"].as_str()), (Some(newest), Some("ok")));
    pw.stop().await;
}

/// Debezium's snapshot: a connector created on a table of rows written a month ago copies
/// them first (`source.snapshot` `first`, `true`, …, `last`), read by pipewatch as they
/// come. With `snapshot_field` their old event times move the watermark but not the
/// record delays, and the stream is `source_snapshot` while it lasts, not
/// `event_time_delayed`; the first change after it is read as the real-time record it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debezium_snapshot_of_old_rows_is_not_an_upstream_delay() {
    let (bootstrap, pg, connect) = (broker().await, postgres().await, connect().await);
    let table = unique_topic("orders").replace('-', "_");
    const ROWS: u64 = 5_000;
    pg.sql(&format!(
        "CREATE TABLE {table} (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO {table} (created_at) SELECT now() - interval '30 days' + i * interval '1 second' \
         FROM generate_series(1, {ROWS}) AS i;"
    ));
    let prefix = unique_topic("snap").replace('-', "_");
    let topic = format!("{prefix}.public.{table}");
    // the topic exists before the connector: pipewatch reads the snapshot live
    pipewatch_kafka::testing::create_topic(bootstrap, &topic, 1).await.unwrap();
    let body = debezium_stream(&topic, "snapshot_field = \"/payload/source/snapshot\"\nmax_record_delay = \"1m\"");
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    pw.wait_cause("orders", "no_data", Duration::from_secs(30)).await;
    let name = format!("{prefix}-cdc");
    connect.create(&name, debezium_postgres(pg, &prefix, &table)).await;
    let causes = std::sync::Mutex::new(Vec::<String>::new());
    let st = eventually("the snapshot read", Duration::from_secs(120), || async {
        let st = stream_status(&pw.status().await, "orders");
        let cause = st["cause"].as_str().unwrap_or_default().to_string();
        let mut seen = causes.lock().unwrap();
        if seen.last() != Some(&cause) {
            seen.push(cause);
        }
        if st["records"].as_u64() == Some(ROWS) {
            Ok(st)
        } else {
            Err(st.to_string())
        }
    })
    .await;
    let causes = causes.into_inner().unwrap();
    eprintln!("causes while the snapshot was read: {causes:?}");
    assert!(!causes.iter().any(|c| c == "event_time_delayed"), "{causes:?}");
    // every record moved the watermark; none counted as a delay
    assert_eq!(
        (st["record_delay"]["count"].as_u64(), st["median_record_delay_seconds"].as_f64()),
        (Some(0), None),
        "{st}"
    );
    // a change as it happens: read in real time
    pg.sql(&format!("INSERT INTO {table} DEFAULT VALUES;"));
    eventually("the change read in real time", Duration::from_secs(30), || async {
        let st = stream_status(&pw.status().await, "orders");
        match (st["records"].as_u64(), st["cause"].as_str(), st["record_delay"]["count"].as_u64()) {
            (Some(n), Some("ok"), Some(1))
                if n == ROWS + 1 && st["median_record_delay_seconds"].as_f64() < Some(60.0) =>
            {
                Ok(())
            }
            _ => Err(st.to_string()),
        }
    })
    .await;
    let (code, _) = connect.rest("DELETE", &format!("/connectors/{name}"), "").await;
    assert_eq!(code, 204);
    pw.stop().await;
}

/// The shop as it runs: `pipewatch generate --orders-format sql` writes the orders into
/// PostgreSQL (through psql, as the compose file does), Debezium carries them to Kafka,
/// pipewatch reads them from the change events and watches the connector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generators_orders_reach_pipewatch_through_postgresql_and_debezium() {
    let (bootstrap, pg, connect) = (broker().await, postgres().await, connect().await);
    let table = unique_topic("orders").replace('-', "_");
    let behaviour = unique_topic("behaviour");
    pipewatch_kafka::testing::create_topic(bootstrap, &behaviour, 1).await.unwrap();
    pg.sql(&pipewatch_traffic::ORDERS_TABLE_SQL.replace("{table}", &table));
    let prefix = unique_topic("gen").replace('-', "_");
    let name = format!("{prefix}-cdc");
    connect.create(&name, debezium_postgres(pg, &prefix, &table)).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/connect/postgres.sh");
    let generator = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} generate --bootstrap-servers {bootstrap} --behaviour-topic {behaviour} --rate 10 \
             --duration 20s --orders-format sql --orders-table {table} | bash {} psql {} -",
            env!("CARGO_BIN_EXE_pipewatch"),
            script.display(),
            pg.port
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the generator and psql");
    let topic = format!("{prefix}.public.{table}");
    let body = format!(
        "{}\n[[connect]]\nname = \"cdc\"\nurl = \"{}\"\npoll = \"2s\"\nbasic_auth = {{ username = \"{CONNECT_USER}\", password_file = \"{}\" }}\n",
        debezium_stream(&topic, r#"segments = [{ name = "channel", field = "/payload/after/channel" }]"#),
        connect.url(),
        {
            let f = std::env::temp_dir().join(format!("{prefix}-password"));
            std::fs::write(&f, CONNECT_PASSWORD).unwrap();
            f.display().to_string()
        }
    );
    let pw = Pipewatch::start(&config(bootstrap, "earliest", &body)).await;
    let st =
        eventually("the generated orders read, fresh, from the change events", Duration::from_secs(90), || async {
            let st = stream_status(&pw.status().await, "orders");
            match (st["cause"].as_str(), st["records"].as_u64(), st["freshness_lag_seconds"].as_f64()) {
                (Some("ok"), Some(n), Some(lag)) if n >= 50 && lag < 30.0 => Ok(st),
                _ => Err(st.to_string()),
            }
        })
        .await;
    assert_eq!(st["connectors"][0], format!("cdc/{name}"), "{st}");
    let channels: Vec<&str> =
        st["segments"][0]["values"].as_array().unwrap().iter().filter_map(|v| v["value"].as_str()).collect();
    assert!(channels.contains(&"web") && channels.contains(&"app"), "{channels:?}");
    let out = generator.wait_with_output().await.expect("the generator ends");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("orders into table {table}")) && said.contains("sent orders="), "{said}");
    let written: u64 = pg.sql(&format!("SELECT count(*) FROM {table}")).parse().unwrap();
    assert!(written >= 150, "{written} orders in the table");
    let (code, _) = connect.rest("DELETE", &format!("/connectors/{name}"), "").await;
    assert_eq!(code, 204);
    pw.stop().await;
}
