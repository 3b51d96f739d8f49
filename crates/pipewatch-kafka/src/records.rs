//! The record queue: every assigned partition's fetched records, read in batches.
//!
//! rust-rdkafka's `BaseConsumer::poll` returns one message per call and wraps each in an
//! event and a reference-counted handle; at a million records a second that overhead is
//! as large as pipewatch's own work on a record. librdkafka's batch call
//! (`rd_kafka_consume_batch_queue`) cannot be used on the consumer queue itself: it would
//! serve a rebalance there without pipewatch's callback. So each assigned partition's
//! fetch queue is forwarded to a queue of pipewatch's own (as librdkafka documents for
//! partition queues, and as `BaseConsumer::split_partition_queue` does), which only ever
//! holds that partition's records and fetch errors; rebalances, errors and anything
//! fetched before the forward stay on the consumer queue, which the loop still polls.
//! librdkafka's prefetch limits (`queued.max.messages.kbytes`) apply to this one queue as
//! they did to the consumer queue.
//!
//! Also here, the other librdkafka call rust-rdkafka does not wrap: the high watermark
//! each fetch response told the consumer ([`cached_high_watermark`]).

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

/// A queue that the assigned partitions' records are forwarded to.
pub(crate) struct RecordQueue {
    queue: *mut rd::rd_kafka_queue_t,
    batch: Vec<*mut rd::rd_kafka_message_t>,
}

// SAFETY: librdkafka's queues are thread-safe; the batch buffer only holds pointers
// between `rd_kafka_consume_batch_queue` and their destruction in the same call.
unsafe impl Send for RecordQueue {}

/// One record of a batch, borrowed from librdkafka until the next record.
pub(crate) struct Record<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub payload: Option<&'a [u8]>,
    /// The Kafka timestamp (create or log-append time), when the record has one.
    pub timestamp: Option<i64>,
}

/// What a batch read: records, or a fetch error librdkafka reported for a partition
/// (with its topic, when the error names one).
pub(crate) enum Item<'a> {
    Record(Record<'a>),
    Error(rdkafka::error::KafkaError, Option<&'a str>),
}

/// Records read per call at most.
const BATCH: usize = 1024;

impl RecordQueue {
    pub(crate) fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Self {
        // SAFETY: a valid client; the queue is destroyed in `drop`, before the client
        // (the owner drops it first, see `consume`).
        let queue = unsafe { rd::rd_kafka_queue_new(consumer.client().native_ptr()) };
        Self { queue, batch: Vec::with_capacity(BATCH) }
    }

    /// The raw queue, for `route` from the rebalance callback.
    pub(crate) fn handle(&self) -> QueueHandle {
        QueueHandle(self.queue)
    }

    /// Reads up to a batch of records (waiting up to `timeout` for the first) and hands
    /// each to `f`; returns how many items there were.
    pub(crate) fn read(&mut self, timeout: Duration, mut f: impl FnMut(Item<'_>)) -> usize {
        let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the buffer has room for BATCH pointers; librdkafka fills `n` of them.
        let n = unsafe {
            let n = rd::rd_kafka_consume_batch_queue(self.queue, timeout_ms, self.batch.as_mut_ptr(), BATCH);
            let n = n.max(0) as usize;
            self.batch.set_len(n);
            n
        };
        let mut last_topic: (*const std::os::raw::c_char, &str) = (std::ptr::null(), "");
        for &m in &self.batch {
            // SAFETY: each message is valid until destroyed below, after `f` returned.
            unsafe {
                let msg = &*m;
                if msg.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let topic = (!msg.rkt.is_null())
                        .then(|| CStr::from_ptr(rd::rd_kafka_topic_name(msg.rkt)).to_str().ok())
                        .flatten();
                    f(Item::Error(rdkafka::error::KafkaError::MessageConsumption(msg.err.into()), topic));
                } else {
                    let name = rd::rd_kafka_topic_name(msg.rkt);
                    if name != last_topic.0 {
                        last_topic = (name, CStr::from_ptr(name).to_str().unwrap_or(""));
                    }
                    let payload =
                        (!msg.payload.is_null()).then(|| std::slice::from_raw_parts(msg.payload as *const u8, msg.len));
                    let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
                    let ts = rd::rd_kafka_message_timestamp(m, &mut kind);
                    let timestamp =
                        (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE).then_some(ts);
                    f(Item::Record(Record {
                        topic: last_topic.1,
                        partition: msg.partition,
                        offset: msg.offset,
                        payload,
                        timestamp,
                    }));
                }
                rd::rd_kafka_message_destroy(m);
            }
        }
        // SAFETY: every pointer was destroyed above.
        unsafe { self.batch.set_len(0) };
        n
    }
}

impl Drop for RecordQueue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}

/// The record queue's raw handle, for the rebalance callback to route partitions to it.
#[derive(Clone, Copy)]
pub(crate) struct QueueHandle(*mut rd::rd_kafka_queue_t);

// SAFETY: only used on the consumer thread, while the queue lives (see `RecordQueue`).
unsafe impl Send for QueueHandle {}
unsafe impl Sync for QueueHandle {}

impl QueueHandle {
    /// Forwards `topic`/`partition`'s fetched records to the record queue; false when
    /// librdkafka does not know the partition (its records then arrive by `poll`).
    pub(crate) fn route<C: ConsumerContext>(self, consumer: &BaseConsumer<C>, topic: &str, partition: i32) -> bool {
        let Ok(topic) = CString::new(topic) else { return false };
        // SAFETY: a valid client and queue; the partition queue handle is released here
        // (the forward keeps its own reference to the destination).
        unsafe {
            let pq = rd::rd_kafka_queue_get_partition(consumer.client().native_ptr(), topic.as_ptr(), partition);
            if pq.is_null() {
                return false;
            }
            rd::rd_kafka_queue_forward(pq, self.0);
            rd::rd_kafka_queue_destroy(pq);
        }
        true
    }
}

/// The partition's high watermark (log end) as the consumer's last fetch response for it
/// told (`rd_kafka_get_watermark_offsets`: no request); `None` before the first one.
pub(crate) fn cached_high_watermark<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &CStr,
    partition: i32,
) -> Option<i64> {
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: a valid client and NUL-terminated topic; librdkafka writes the two offsets.
    let err = unsafe {
        rd::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}
