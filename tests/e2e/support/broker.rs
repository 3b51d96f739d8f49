//! The real broker: one per test binary (started once, or `PIPEWATCH_TEST_BOOTSTRAP`),
//! topics with history, and a consumer job that reads and commits.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

pub use pipewatch_kafka::testing::{
    add_partitions, create_topic, create_topic_with, delete_records_before, delete_topic, unique_topic, KafkaBroker,
    TestProducer,
};

use super::now_ms;

/// The broker every test of this binary shares (started on first use).
pub async fn broker() -> &'static str {
    tokio::task::spawn_blocking(KafkaBroker::shared).await.expect("broker start panicked")
}

/// Creates `topic` (kept forever) with a day and an hour of history: `per_hour`
/// records on each partition in each past hour, and in this one up to now.
pub async fn topic_with_history(bootstrap: &'static str, topic: &str, partitions: i32, per_hour: u64) {
    create_topic_with(bootstrap, topic, partitions, &[("retention.ms", "-1")]).await.unwrap();
    let now = now_ms();
    let t = topic.to_string();
    tokio::task::spawn_blocking(move || {
        TestProducer::new(bootstrap).history(&t, partitions, now / 3_600_000 - 25, now, |_| per_hour)
    })
    .await
    .unwrap();
}

/// A job's consumer in `group`, committing by hand.
fn job(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("the job's consumer")
}

/// A job in `group` that reads the first `n` records of `topic`/0 and commits after them.
pub fn read_and_commit(bootstrap: &str, group: &str, topic: &str, n: i64) {
    let consumer = job(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut read = 0;
    while read < n {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                assert_eq!(m.offset(), read, "records in order");
                read += 1;
            }
            other => panic!("the job could not read record {read}: {:?}", other.map(|r| r.map(|m| m.offset()))),
        }
    }
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset(topic, 0, Offset::Offset(n)).unwrap();
    consumer.commit(&commit, CommitMode::Sync).expect("the job commits");
}

/// A job in `group` that commits these `(topic, partition, offset)`s (without reading:
/// what a job that processed up to there would have committed).
pub fn commit_offsets(bootstrap: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer = job(bootstrap, group);
    let mut commit = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        commit.add_partition_offset(topic, *partition, Offset::Offset(*offset)).unwrap();
    }
    consumer.commit(&commit, CommitMode::Sync).expect("the job commits");
}
