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
