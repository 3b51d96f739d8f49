//! Consumer groups as pipewatch reads them, never joining one: their committed offsets
//! through librdkafka's ListConsumerGroupOffsets (an OffsetFetch to each group's
//! coordinator) on one client of pipewatch's own, and the cluster's group list
//! (ListGroups, for discovery).
//!
//! A request asks for at most [`OFFSET_FETCH_PARTITIONS`] partitions: librdkafka matches
//! each partition of an OffsetFetch answer to its list by a linear search, so one request
//! for a group's 5 000 partitions cost 12.5 million comparisons a tick (the watched group
//! that idled at 17 CPU s a minute); in requests of 200 the same answer costs 25 times
//! fewer, and the requests are pipelined on the coordinator's connection. A request for
//! everything a group committed (its partitions unknown: discovery) cannot be cut so, and
//! is made only when a group is new or its turn has come (see `poller::list_groups`).
//!
//! rust-rdkafka does not wrap the admin API's group offsets, so this module calls
//! librdkafka's C API (`rdkafka::bindings`) itself; every pointer it makes it frees.

use std::ffi::{c_void, CStr, CString};
use std::time::Duration;

use pipewatch_core::spec::ConsumerError;
use rdkafka::bindings as rdsys;
use rdkafka::client::Client;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientContext;

/// Partitions per OffsetFetch request at most.
pub(crate) const OFFSET_FETCH_PARTITIONS: usize = 200;

/// The partitions of one request: `None` asks for everything the group committed.
type Chunk<'a> = Option<&'a [(&'a str, i32)]>;

/// Groups of several requests read at once (see [`committed_offsets`]).
const GROUPS_IN_FLIGHT: usize = 8;

/// A group's committed offsets, by topic and partition: `None` where it committed none.
pub(crate) type CommittedOffsets = Vec<(String, i32, Option<i64>)>;

/// One group's question: its committed offsets on these partitions (`None`: on every
/// partition it committed on).
#[derive(Debug, Clone)]
pub(crate) struct GroupQuery<'a> {
    pub(crate) group: &'a str,
    pub(crate) partitions: Option<Vec<(&'a str, i32)>>,
}

/// Each query's answer, in order: the group's committed offsets on its partitions (a
/// query with no partitions has none), or why they could not be read.
///
/// A query of one request goes out at once with the others. A query of several sends its
/// first request, and the rest once that one is answered, at most [`GROUPS_IN_FLIGHT`]
/// such queries at a time: librdkafka keeps the coordinators of the last 11 groups it
/// looked up, so the group's later requests find its coordinator known instead of each
/// asking for it (one FindCoordinator per group read, not one per request).
pub(crate) fn committed_offsets<C: ClientContext>(
    client: &Client<C>,
    queries: &[GroupQuery<'_>],
    timeout: Duration,
) -> Vec<Result<CommittedOffsets, ConsumerError>> {
    let mut answers: Vec<Result<CommittedOffsets, ConsumerError>> =
        queries.iter().map(|q| Ok(Vec::with_capacity(q.partitions.as_ref().map_or(0, Vec::len)))).collect();
    // per query, its requests' partitions (`None`: everything the group committed)
    let chunks: Vec<Vec<Chunk<'_>>> = queries
        .iter()
        .map(|q| match &q.partitions {
            Some(p) => p.chunks(OFFSET_FETCH_PARTITIONS).map(Some).collect(),
            None => vec![None],
        })
        .collect();
    let groups: Vec<Result<CString, ConsumerError>> = queries
        .iter()
        .map(|q| {
            CString::new(q.group).map_err(|_| ConsumerError::new(format!("group id {:?} holds a NUL byte", q.group)))
        })
        .collect();
    let rk = client.native_ptr();
    let queue = Queue::new(rk);
    let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // per query: its requests sent, and those not answered yet
    let (mut sent, mut outstanding) = (vec![0usize; queries.len()], vec![0usize; queries.len()]);
    // sends query i's requests up to `upto`
    let send = |i: usize, upto: usize, sent: &mut [usize], outstanding: &mut [usize], answers: &mut [_]| {
        let group = match &groups[i] {
            Ok(g) => g,
            Err(e) => {
                answers[i] = Err(e.clone());
                return;
            }
        };
        // (a query of no partitions has no request: its answer is empty)
        let upto = upto.min(chunks[i].len());
        for chunk in &chunks[i][sent[i]..upto] {
            match list_offsets_request(rk, queue.0, group, *chunk, timeout_ms, i) {
                Ok(()) => outstanding[i] += 1,
                Err(e) => answers[i] = Err(ConsumerError::new(e)),
            }
        }
        sent[i] = upto;
    };
    let (single, mut several): (Vec<usize>, Vec<usize>) = (0..queries.len()).partition(|&i| chunks[i].len() <= 1);
    for i in single {
        send(i, 1, &mut sent, &mut outstanding, &mut answers);
    }
    // the queries of several requests not started yet, the next last
    several.reverse();
    let mut in_flight = 0;
    loop {
        while in_flight < GROUPS_IN_FLIGHT {
            let Some(i) = several.pop() else { break };
            send(i, 1, &mut sent, &mut outstanding, &mut answers);
            in_flight += usize::from(outstanding[i] > 0);
        }
        if outstanding.iter().all(|&n| n == 0) {
            break;
        }
        // librdkafka times each request out itself and answers it with the error: no
        // answer at all within the time-out (and a grace for the queue's hand-over) is
        // a client that does not answer
        let Some(event) = queue.poll(timeout + Duration::from_secs(1)) else { break };
        if event.kind() != rdsys::RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT {
            continue;
        }
        let i = event.opaque();
        let Some(n) = outstanding.get_mut(i).filter(|n| **n > 0) else { continue };
        *n -= 1;
        match (&mut answers[i], event.group_offsets()) {
            (Ok(all), Ok(found)) => all.extend(found),
            (Ok(_), Err(e)) => answers[i] = Err(group_error(queries[i].group, e)),
            (Err(_), _) => {}
        }
        let several = chunks[i].len() > 1;
        if several && sent[i] == 1 && answers[i].is_ok() {
            // the first answered: the coordinator is known now
            send(i, chunks[i].len(), &mut sent, &mut outstanding, &mut answers);
        }
        if several && outstanding[i] == 0 {
            in_flight -= 1;
        }
    }
    for (i, n) in outstanding.iter().enumerate() {
        if *n > 0 && answers[i].is_ok() {
            answers[i] = Err(ConsumerError::new(format!(
                "the group coordinator did not answer within {} s",
                timeout.as_secs_f64().ceil()
            )));
        }
    }
    answers
}

/// One group's committed offsets on every partition given (a single query).
pub(crate) fn group_offsets<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    partitions: Vec<(&str, i32)>,
    timeout: Duration,
) -> Result<CommittedOffsets, ConsumerError> {
    // one answer per query, so there is one
    committed_offsets(client, &[GroupQuery { group, partitions: Some(partitions) }], timeout)
        .pop()
        .unwrap_or_else(|| Err(ConsumerError::new("no answer to the group's offset request")))
}

/// The topics a group has committed offsets on, from everything it committed.
pub(crate) fn topics_of(found: &CommittedOffsets) -> Vec<String> {
    let mut topics: Vec<String> = Vec::new();
    for (t, _, o) in found {
        // an answer comes topic by topic
        if o.is_some() && topics.last() != Some(t) {
            topics.push(t.clone());
        }
    }
    topics.sort_unstable();
    topics.dedup();
    topics
}

/// The cluster's consumer groups (ListGroups on every broker; without Describe on the
/// cluster, the broker lists only the groups pipewatch may describe).
pub(crate) fn group_names<C: ClientContext>(client: &Client<C>, timeout: Duration) -> Result<Vec<String>, String> {
    let list = client.fetch_group_list(None, timeout).map_err(|e| format!("ListGroups: {e}"))?;
    Ok(list.groups().iter().map(|g| g.name().to_string()).collect())
}

/// What a failed read of a group's offsets says: the authorizer's no, named.
fn group_error(group: &str, (code, message): (RDKafkaErrorCode, String)) -> ConsumerError {
    if code == RDKafkaErrorCode::GroupAuthorizationFailed {
        ConsumerError { message: format!("access denied: Describe on group {group}"), denied: true }
    } else {
        ConsumerError::new(message)
    }
}

/// Hands one ListConsumerGroupOffsets request for `partitions` to librdkafka, its answer
/// to arrive on `queue` tagged with `tag`.
fn list_offsets_request(
    rk: *mut rdsys::rd_kafka_t,
    queue: *mut rdsys::rd_kafka_queue_t,
    group: &CStr,
    partitions: Option<&[(&str, i32)]>,
    timeout_ms: i32,
    tag: usize,
) -> Result<(), String> {
    // each topic's name once (a group's partitions come topic by topic)
    let (mut names, mut parts): (Vec<CString>, Vec<(usize, i32)>) = (Vec::new(), Vec::new());
    for (t, p) in partitions.unwrap_or_default() {
        if names.last().is_none_or(|last| last.as_bytes() != t.as_bytes()) {
            names.push(CString::new(*t).map_err(|_| format!("topic {t:?} holds a NUL byte"))?);
        }
        parts.push((names.len() - 1, *p));
    }
    // SAFETY: every object made here is destroyed here; librdkafka copies the list into
    // the request and the request into the operation it enqueues.
    unsafe {
        let list = match partitions {
            Some(partitions) => {
                let list = rdsys::rd_kafka_topic_partition_list_new(partitions.len() as i32);
                for (name, p) in &parts {
                    rdsys::rd_kafka_topic_partition_list_add(list, names[*name].as_ptr(), *p);
                }
                list
            }
            None => std::ptr::null_mut(),
        };
        let mut request = rdsys::rd_kafka_ListConsumerGroupOffsets_new(group.as_ptr(), list);
        if !list.is_null() {
            rdsys::rd_kafka_topic_partition_list_destroy(list);
        }
        let options = rdsys::rd_kafka_AdminOptions_new(
            rk,
            rdsys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        );
        let mut errstr = [0 as std::ffi::c_char; 256];
        let set =
            rdsys::rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr.as_mut_ptr(), errstr.len());
        rdsys::rd_kafka_AdminOptions_set_opaque(options, tag as *mut c_void);
        let result = if set == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            rdsys::rd_kafka_ListConsumerGroupOffsets(rk, &mut request, 1, options, queue);
            Ok(())
        } else {
            Err(CStr::from_ptr(errstr.as_ptr()).to_string_lossy().into_owned())
        };
        rdsys::rd_kafka_AdminOptions_destroy(options);
        rdsys::rd_kafka_ListConsumerGroupOffsets_destroy(request);
        result
    }
}

/// A queue of pipewatch's own for admin results.
struct Queue(*mut rdsys::rd_kafka_queue_t);

impl Queue {
    fn new(rk: *mut rdsys::rd_kafka_t) -> Self {
        // SAFETY: a new queue on a live client, destroyed on drop (results still on their
        // way to it are dropped by librdkafka).
        Queue(unsafe { rdsys::rd_kafka_queue_new(rk) })
    }

    fn poll(&self, timeout: Duration) -> Option<Event> {
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: the queue is live; the event, if any, is owned by the caller.
        let ev = unsafe { rdsys::rd_kafka_queue_poll(self.0, ms) };
        (!ev.is_null()).then_some(Event(ev))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: made by rd_kafka_queue_new, destroyed once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) }
    }
}

/// An event polled from a [`Queue`], destroyed on drop.
struct Event(*mut rdsys::rd_kafka_event_t);

impl Event {
    fn kind(&self) -> i32 {
        // SAFETY: a live event.
        unsafe { rdsys::rd_kafka_event_type(self.0) }
    }

    fn opaque(&self) -> usize {
        // SAFETY: a live event; the opaque is the tag the request was given.
        unsafe { rdsys::rd_kafka_event_opaque(self.0) as usize }
    }

    /// A ListConsumerGroupOffsets result: the group's committed offsets, or its error.
    fn group_offsets(&self) -> Result<CommittedOffsets, (RDKafkaErrorCode, String)> {
        // SAFETY: a live ListConsumerGroupOffsets result event: every pointer read here
        // lives as long as the event, and the strings are copied out.
        unsafe {
            let err = rdsys::rd_kafka_event_error(self.0);
            if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let text = rdsys::rd_kafka_event_error_string(self.0);
                return Err((err.into(), c_string(text).unwrap_or_else(|| RDKafkaErrorCode::from(err).to_string())));
            }
            let result = rdsys::rd_kafka_event_ListConsumerGroupOffsets_result(self.0);
            let mut n = 0usize;
            let groups = rdsys::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut n);
            let mut found = Vec::new();
            for k in 0..n {
                let group = *groups.add(k);
                let error = rdsys::rd_kafka_group_result_error(group);
                if !error.is_null() {
                    let code = rdsys::rd_kafka_error_code(error);
                    let text = c_string(rdsys::rd_kafka_error_string(error));
                    return Err((code.into(), text.unwrap_or_else(|| RDKafkaErrorCode::from(code).to_string())));
                }
                let list = rdsys::rd_kafka_group_result_partitions(group);
                if list.is_null() || (*list).cnt <= 0 {
                    continue;
                }
                for e in std::slice::from_raw_parts((*list).elems, (*list).cnt as usize) {
                    let topic = c_string(e.topic).unwrap_or_default();
                    let ok = e.err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
                    found.push((topic, e.partition, (ok && e.offset >= 0).then_some(e.offset)));
                }
            }
            Ok(found)
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: polled from a queue, destroyed once.
        unsafe { rdsys::rd_kafka_event_destroy(self.0) }
    }
}

/// A C string copied out, if there is one.
///
/// # Safety
/// `s` is null or a NUL-terminated string that lives for the call.
unsafe fn c_string(s: *const std::ffi::c_char) -> Option<String> {
    (!s.is_null()).then(|| CStr::from_ptr(s).to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    #[test]
    fn a_query_of_no_partitions_is_answered_empty_without_a_request() {
        // no broker: a request would time out with an error, not answer empty
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9").create().unwrap();
        let partitions = [("orders", 0)];
        let queries = [
            GroupQuery { group: "nothing-assigned", partitions: Some(Vec::new()) },
            GroupQuery { group: "jobs", partitions: Some(partitions.to_vec()) },
        ];
        let answers = committed_offsets(client.client(), &queries, Duration::from_millis(200));
        assert_eq!(answers[0].as_ref().map(Vec::len), Ok(0));
        assert!(answers[1].is_err(), "{:?}", answers[1]);
    }
}
