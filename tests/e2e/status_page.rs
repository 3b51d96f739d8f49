//! The status page as a person's browser shows it (headless Chromium, Debian's
//! package): every value from the config or the cluster is text, never markup.

use std::time::Duration;

use crate::support::*;

/// The page after Chromium has loaded it and run whatever scripts it has.
async fn rendered(url: &str) -> String {
    let url = url.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            .args(["--virtual-time-budget=3000", "--dump-dom", &url])
            .output()
    })
    .await
    .unwrap()
    .expect("Chromium not found: apt-get install chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_markup_render_as_text_in_a_real_browser() {
    let script = "<script>document.title='pwned'</script>";
    let img = "<img src=x onerror=document.title=1>";
    let body = format!(
        r#"
[[stream]]
name = "{script}"
topic = "orders"
event_time = {{ field = "/ts", format = "epoch_millis" }}
[[stream]]
name = "{img}"
topic = "behaviour"
event_time = {{ field = "/ts", format = "epoch_millis" }}
[[pair]]
name = "<b>pair</b>"
leader = "{script}"
follower = "{img}"
[[alert]]
name = "Stale<i>"
kind = "freshness_lag"
target = "{script}"
threshold = "1s"
impact = "<u>campaigns</u> & co"
"#
    );
    // No cluster: KafkaUnreachable fires, so the alerts table has rows too.
    let dead = format!("127.0.0.1:{}", pipewatch_kafka::testing::free_port());
    let pw = Pipewatch::start(&config(&dead, "latest", &body)).await;
    eventually("a first tick", Duration::from_secs(30), || async {
        let st = pw.status().await;
        st["streams"].as_array().map(|s| s.len() == 2).filter(|ok| *ok).map(|_| ()).ok_or(st.to_string())
    })
    .await;
    let dom = rendered(&format!("http://{}/", pw.addr)).await;
    assert!(dom.contains("<title>pipewatch</title>"), "a script ran and changed the title:\n{dom}");
    assert!(!dom.contains("pwned</title>") && !dom.contains("<title>1</title>"), "{dom}");
    // the names are there, as text (the serialized DOM escapes text, not markup)
    for text in [
        "&lt;script&gt;document.title='pwned'&lt;/script&gt;",
        "&lt;img src=x onerror=document.title=1&gt;",
        "&lt;b&gt;pair&lt;/b&gt;",
    ] {
        assert!(dom.contains(text), "{text} is not shown as text:\n{dom}");
    }
    for markup in ["<b>pair", "<img src=\"x\"", "<u>campaigns"] {
        assert!(!dom.contains(markup), "{markup} became markup:\n{dom}");
    }
    pw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_draws_the_last_minutes_of_rate_freshness_and_sync_lag_as_charts() {
    let bootstrap = broker().await;
    let (orders, behaviour) = (unique_topic("orders"), unique_topic("behaviour"));
    for t in [&orders, &behaviour] {
        create_topic(bootstrap, t, 1).await.unwrap();
    }
    // orders and behaviour events every 100 ms, in sync
    let in_sync = || std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = orders_and_behaviour_traffic(bootstrap, &orders, &behaviour, in_sync(), in_sync());
    // and signups, a record a second as in the day of history written before
    let signups = unique_topic("signups");
    topic_with_history(bootstrap, &signups, 1, 3600).await;
    let steady_signups = steady(bootstrap, &signups, 1, Duration::from_secs(1));
    let with_band = format!(
        "[[stream]]\nname = \"signups\"\ntopic = \"{signups}\"\nevent_time = {{ field = \"/ts\", format = \"epoch_millis\" }}\n\
         baseline = {{ history = \"2d\", floor = 0.1 }}\n"
    );
    let pw =
        Pipewatch::start(&config(bootstrap, "earliest", &orders_and_behaviour(&orders, &behaviour, "", &with_band)))
            .await;
    pw.wait_cause("orders", "ok", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let dom = rendered(&format!("http://{}/", pw.addr)).await;
    // one chart per figure, each a polyline with as many points as it says
    // (series, points it counts, last value, points drawn, band: (samples, vertices))
    type Chart = (String, usize, f64, usize, Option<(usize, usize)>);
    let charts: Vec<Chart> = dom
        .split("<svg ")
        .skip(1)
        .map(|svg| {
            let attr = |name: &str| {
                svg.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            let polyline = svg.split("<polyline").nth(1).unwrap_or_default();
            let polyline = polyline.split(" points=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default();
            let drawn = polyline.split_whitespace().count();
            // the band: its sample count and the polygon's vertices (upper edge, lower back)
            let band = svg.split("<polygon").nth(1).map(|polygon| {
                let attr = |name: &str| polygon.split(&format!(" {name}=\"")).nth(1).and_then(|r| r.split('"').next());
                let vertices = attr("points").unwrap_or_default().split_whitespace().count();
                (attr("data-points").and_then(|n| n.parse().ok()).unwrap_or(0), vertices)
            });
            (
                attr("data-series"),
                attr("data-points").parse().unwrap_or(0),
                attr("data-last").parse().unwrap_or(f64::NAN),
                drawn,
                band,
            )
        })
        .collect();
    let find = |id: &str| {
        charts.iter().find(|c| c.0 == id).cloned().unwrap_or_else(|| panic!("no {id} chart in {charts:?}\n{dom}"))
    };
    for id in ["rate:orders", "rate:behaviour", "freshness:orders", "freshness:behaviour", "sync_lag:orders_behaviour"]
    {
        let (_, points, _, drawn, band) = find(id);
        assert!(points >= 10, "{id}: {points} points after 12 s of ticks");
        assert_eq!(points, drawn, "{id}: the polyline draws every point it counts");
        assert_eq!(band, None, "{id}: no baseline, no band");
    }
    // signups: its rate inside the band learnt from its history, drawn for every sample
    // since the band was known
    let (_, points, rate, drawn, band) = find("rate:signups");
    let (band_points, vertices) = band.unwrap_or_else(|| panic!("no band on the signups chart\n{dom}"));
    assert!(band_points >= 5 && band_points <= points && points == drawn, "{band_points} of {points}");
    assert_eq!(vertices, 2 * band_points, "upper edge and lower edge");
    let learnt = pw.status().await["streams"][2]["baseline"]["band"].clone();
    let (lower, upper) = (learnt["lower"].as_f64().unwrap(), learnt["upper"].as_f64().unwrap());
    assert!(lower <= rate && rate <= upper, "signups {rate} outside {learnt}");
    assert!(dom.contains(&format!("(expected {lower:.1}–{upper:.1}/s)")), "the caption says what is expected");
    // the values are the monitor's (a tick apart at most): records flow, in sync
    let (_, _, rate, _, _) = find("rate:orders");
    let status = pw.status().await;
    let own = status["streams"][0]["rate_records_per_second"].as_f64().unwrap_or_default();
    assert!(rate > 1.0 && (rate - own).abs() <= 0.3 * own, "chart {rate}, status {own}");
    let (_, _, sync, _, _) = find("sync_lag:orders_behaviour");
    assert!(sync.abs() < 5.0, "sync lag {sync}");
    stop.stop();
    steady_signups.stop();
    pw.stop().await;
}
