//! Alert rules and their state machine (inactive → pending → firing → resolved, as
//! Prometheus does), evaluated on each [`Snapshot`] with the time passed in.
//!
//! Root cause, not symptoms: every alert carries its target's diagnosed cause as a
//! label; while the cluster is unreachable the per-stream rules are held back and one
//! built-in `KafkaUnreachable` alert fires instead; lag rules wait while their streams
//! have no data yet or are catching up.
//!
//! The rules as configured live in [`rules`], the evaluator in [`evaluator`], what an
//! alert says (labels, summaries, value formats) in [`text`].

pub mod evaluator;
pub mod rules;
pub mod text;

pub use evaluator::{AlertEvaluator, AlertState, AlertStatus, Evaluation};
pub use rules::{AlertKind, AlertRule, AlertTarget, TargetKind, DISCOVERED};
pub use text::{AlertEvent, Transition, RESERVED_LABELS};

#[cfg(test)]
mod tests {
    use super::text::rule_event;
    use super::*;
    use crate::diagnosis::{kafka_unreachable, Cause};
    use crate::diagnosis::{AlertCause, ConsumerCause};
    use crate::extract::InvalidReason;
    use crate::histogram::{Histogram, GAP_DURATION_BUCKETS, RECORD_DELAY_BUCKETS};
    use crate::snapshot::{ConsumerPairSnapshot, KafkaStatus, Snapshot, StreamSnapshot};
    use crate::snapshot::{PairSnapshot, PartitionSnapshot};
    use crate::time::Millis;

    const T0: Millis = 1_795_375_975_000;
    const SEC: Millis = 1000;

    fn stream(name: &str, cause: Cause, freshness: Option<f64>) -> StreamSnapshot {
        StreamSnapshot {
            name: name.into(),
            topic: name.into(),
            discovered: false,
            topics: Vec::new(),
            missing_topics: Vec::new(),
            cause,
            access_denied: None,
            schema_registry: None,
            connectors: Vec::new(),
            connector: None,
            connector_unknown: None,
            waiting_for_schemas: Vec::new(),
            schemas: Vec::new(),
            schema_changes: 0,
            watermark_ms: freshness.map(|f| T0 - (f * 1000.0) as Millis),
            freshness_lag_seconds: freshness,
            silence_seconds: Some(0.0),
            max_silence_seconds: 120.0,
            min_rate: None,
            max_rate: None,
            baseline: None,
            segment_silent: None,
            segment_silence_seconds: None,
            segments: Vec::new(),
            rate_records_per_second: Some(10.0),
            rate_window_full: true,
            median_record_delay_seconds: None,
            timezone_hint: None,
            backlog_records: 0,
            active_partitions: 0,
            records: 0,
            bytes: 0,
            invalid: Default::default(),
            gaps: 0,
            record_delay: Histogram::new(RECORD_DELAY_BUCKETS),
            gap_duration: Histogram::new(GAP_DURATION_BUCKETS),
            partitions: vec![PartitionSnapshot {
                topic: name.into(),
                partition: 0,
                slot: 0,
                watermark_ms: None,
                last_record_ms: None,
                log_end_offset: Some(10),
                position_offset: Some(10),
                backlog_records: Some(0),
                silence_seconds: Some(0.0),
                active: true,
                caught_up: true,
                records: 0,
                bytes: 0,
                invalid: Default::default(),
                gaps: 0,
                gap_open_since_ms: None,
            }],
        }
    }

    /// orders (leader) and behaviour (follower), behaviour `lag` seconds behind.
    fn snap(kafka: KafkaStatus, behaviour_cause: Cause, lag: f64) -> Snapshot {
        let pair_cause = behaviour_cause;
        Snapshot {
            schema_registry: None,
            discovery: None,
            topic_discovery: None,
            at_ms: T0,
            kafka,
            kafka_error: None,
            connect: Vec::new(),
            streams: vec![
                stream("orders", Cause::Ok, Some(1.0)),
                stream("behaviour", behaviour_cause, Some(1.0 + lag)),
            ],
            pairs: vec![PairSnapshot {
                name: "orders_behaviour".into(),
                leader: "orders".into(),
                follower: "behaviour".into(),
                sync_lag_seconds: Some(lag),
                cause: pair_cause.into(),
                cause_stream: "behaviour".into(),
                timezone_hint: None,
                join: None,
            }],
            consumers: Vec::new(),
        }
    }

    fn sync_rule(for_s: i64) -> AlertRule {
        AlertRule {
            name: "BehaviourBehindOrders".into(),
            kind: AlertKind::SyncLag,
            target: AlertTarget::Pair(0),
            threshold: 900.0,
            clear: 600.0,
            for_ms: for_s * SEC,
            severity: "page".into(),
            labels: vec![("team".into(), "data".into())],
            impact: "Segmentation and ad targeting run on stale data.".into(),
            min_judged: 0,
        }
    }

    fn evaluator(rules: Vec<AlertRule>) -> Evaluator {
        Evaluator { inner: AlertEvaluator::new(rules, 2, 60 * SEC), last: Evaluation::default() }
    }

    /// The evaluator, keeping the last evaluation's rule states for the assertions.
    struct Evaluator {
        inner: AlertEvaluator,
        last: Evaluation,
    }

    impl Evaluator {
        fn evaluate(&mut self, snap: &Snapshot, now: Millis) -> Vec<AlertEvent> {
            self.last = self.inner.evaluate(snap, now);
            self.last.events.clone()
        }

        fn status(&self, _snap: &Snapshot) -> Vec<AlertStatus> {
            self.last.alerts.clone()
        }
    }

    #[test]
    fn pending_then_firing_only_after_for() {
        let mut ev = evaluator(vec![sync_rule(60)]);
        let s = snap(KafkaStatus::Up, Cause::EventTimeDelayed, 28_920.0);
        assert!(ev.evaluate(&s, T0).is_empty());
        assert_eq!(ev.status(&s)[0].state, AlertState::Pending { since_ms: T0 });
        assert!(ev.evaluate(&s, T0 + 59 * SEC).is_empty());
        let fired = ev.evaluate(&s, T0 + 60 * SEC);
        assert_eq!(fired.len(), 1);
        let e = &fired[0];
        assert_eq!(e.transition, Transition::Firing);
        assert_eq!(e.label("alertname"), Some("BehaviourBehindOrders"));
        assert_eq!(e.label("cause"), Some("event_time_delayed"));
        assert_eq!(e.label("pair"), Some("orders_behaviour"));
        assert_eq!(e.label("severity"), Some("page"));
        assert_eq!(e.label("team"), Some("data"));
        assert_eq!(e.annotation("summary"), Some("behaviour is 8h 02m behind orders"));
        assert_eq!(e.annotation("impact"), Some("Segmentation and ad targeting run on stale data."));
        assert_eq!(e.annotation("generatorURL"), None, "the receiver adds the link back");
        assert!(ev.evaluate(&s, T0 + 61 * SEC).is_empty(), "firing stays firing without a new transition");
    }

    #[test]
    fn the_time_zone_question_is_in_the_description_and_leaves_the_cause_alone() {
        let mut ev = evaluator(vec![sync_rule(0)]);
        let mut s = snap(KafkaStatus::Up, Cause::EventTimeDelayed, 28_800.0);
        let question = "behaviour is behind orders by 8h 00m ± 1.0s, exactly the 8h 00m offset of a time zone (UTC+08:00 or UTC−08:00): are event times written as local time?";
        s.pairs[0].timezone_hint = Some(question.into());
        let fired = ev.evaluate(&s, T0);
        let description = fired[0].annotation("description").unwrap();
        assert!(
            description.ends_with(&format!("; {question}")) || description.contains(&format!("; {question};")),
            "{description}"
        );
        assert_eq!(fired[0].label("cause"), Some("event_time_delayed"));
    }

    #[test]
    fn a_dip_below_threshold_resets_pending() {
        let mut ev = evaluator(vec![sync_rule(60)]);
        ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, 1000.0), T0);
        ev.evaluate(&snap(KafkaStatus::Up, Cause::Ok, 100.0), T0 + 30 * SEC);
        assert!(ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, 1000.0), T0 + 61 * SEC).is_empty());
    }

    #[test]
    fn no_flapping_between_clear_and_threshold_then_resolve() {
        let mut ev = evaluator(vec![sync_rule(0)]);
        assert_eq!(ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, 1000.0), T0).len(), 1);
        for (i, lag) in [899.0, 700.0, 601.0, 600.0, 850.0].into_iter().enumerate() {
            let t = T0 + (i as i64 + 1) * SEC;
            assert!(ev.evaluate(&snap(KafkaStatus::Up, Cause::EventTimeDelayed, lag), t).is_empty(), "lag {lag}");
        }
        let resolved = ev.evaluate(&snap(KafkaStatus::Up, Cause::Ok, 599.0), T0 + 10 * SEC);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].transition, Transition::Resolved);
        assert_eq!(resolved[0].ends_at_ms, Some(T0 + 10 * SEC));
        assert_eq!(resolved[0].starts_at_ms, T0);
        assert_eq!(resolved[0].label("cause"), Some("event_time_delayed"), "the cause label is the one it fired with");
        // between clear and threshold again: stays quiet
        assert!(ev.evaluate(&snap(KafkaStatus::Up, Cause::Ok, 800.0), T0 + 11 * SEC).is_empty());
    }

    #[test]
    fn join_completeness_fires_on_the_lowest_value_judged_enough_and_names_it() {
        use crate::join::{JoinSnapshot, JoinValueSnapshot, Outcomes};
        let o = |matched, missing| Outcomes { matched, missing, unjudged: 0 };
        let value = |v: &str, w: Outcomes, usual| JoinValueSnapshot {
            segment: "referral".into(),
            value: v.into(),
            total: w,
            window: w,
            ratio: (w.matched + w.missing > 0).then(|| w.matched as f64 / (w.matched + w.missing) as f64),
            usual,
        };
        let join = |social: Outcomes| JoinSnapshot {
            pending: 0,
            pending_oldest_seconds: None,
            follower_keys: 0,
            follower_keys_dropped: 0,
            sample: 1,
            window_seconds: 900.0,
            total: o(194 + social.matched, 6 + social.missing),
            window: o(194 + social.matched, 6 + social.missing),
            ratio: Some((194 + social.matched) as f64 / (200 + social.matched + social.missing) as f64),
            usual: None,
            values: vec![value("search", o(194, 6), Some(0.96)), value("social", social, Some(0.95))],
            partitions: crate::join::JoinPartitions::All,
            co_partitioned: None,
            incomplete: Vec::new(),
        };
        let rule = AlertRule {
            name: "OrdersWithoutBehaviour".into(),
            kind: AlertKind::JoinCompleteness,
            threshold: 0.5,
            clear: 0.5,
            min_judged: 20,
            labels: Vec::new(),
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![rule]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        s.pairs[0].join = Some(join(o(0, 12)));
        assert!(ev.evaluate(&s, T0).is_empty(), "12 judged: fewer than min_judged");
        s.pairs[0].join = Some(join(o(0, 212)));
        let fired = ev.evaluate(&s, T0 + SEC);
        assert_eq!(fired.len(), 1, "one page for the pair");
        assert_eq!(fired[0].label("pair"), Some("orders_behaviour"));
        assert_eq!(
            fired[0].annotation("summary"),
            Some("orders with referral=social: 0.0% matched behaviour, under 50.0%")
        );
        let description = fired[0].annotation("description").unwrap();
        assert!(
            description.starts_with(
                "orders with referral=social: 0 of 212 matched behaviour in the last 15m 00s, other values referral=search 97.0% (usually 95.0%)"
            ),
            "{description}"
        );
        s.pairs[0].join = Some(join(o(200, 12)));
        assert_eq!(ev.evaluate(&s, T0 + 2 * SEC)[0].transition, Transition::Resolved);
        // the follower 8 h behind: the rule waits (its side's cause holds lag rules)
        let mut late = snap(KafkaStatus::Up, Cause::EventTimeDelayed, 28_800.0);
        late.pairs[0].join = Some(join(o(0, 212)));
        let held = ev.evaluate(&late, T0 + 3 * SEC);
        assert!(held.iter().all(|e| e.label("alertname") != Some("OrdersWithoutBehaviour")), "{held:?}");
    }

    #[test]
    fn rate_low_is_a_lower_bound_rule() {
        let rule = AlertRule {
            name: "OrdersVolumeLow".into(),
            kind: AlertKind::RateLow,
            target: AlertTarget::Stream(0),
            threshold: 5.0,
            clear: 8.0,
            for_ms: 0,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![rule]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        s.streams[0].rate_records_per_second = Some(0.0);
        s.streams[0].rate_window_full = false;
        assert!(ev.evaluate(&s, T0 - SEC).is_empty(), "a rate over part of a window does not count");
        s.streams[0].rate_window_full = true;
        s.streams[0].rate_records_per_second = Some(4.0);
        s.streams[0].cause = Cause::VolumeLow;
        let fired = ev.evaluate(&s, T0);
        assert_eq!(fired[0].annotation("summary"), Some("orders receives 4.00 records/s, below 5"));
        assert_eq!(fired[0].label("stream"), Some("orders"));
        s.streams[0].rate_records_per_second = Some(7.0);
        assert!(ev.evaluate(&s, T0 + SEC).is_empty(), "below clear: still firing");
        s.streams[0].rate_records_per_second = Some(9.0);
        assert_eq!(ev.evaluate(&s, T0 + 2 * SEC)[0].transition, Transition::Resolved);
    }

    #[test]
    fn an_unreachable_cluster_holds_rules_back_and_fires_one_alert() {
        let mut ev = evaluator(vec![sync_rule(0)]);
        let down = snap(KafkaStatus::Down, Cause::KafkaUnreachable, 28_800.0);
        let events = ev.evaluate(&down, T0);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].label("alertname"), Some(kafka_unreachable::ALERT));
        assert_eq!(events[0].label("cause"), Some("kafka_unreachable"));
        assert_eq!(ev.status(&down)[1].held_back, Some(Cause::KafkaUnreachable.into()));
        let up = snap(KafkaStatus::Up, Cause::EventTimeDelayed, 28_800.0);
        let events = ev.evaluate(&up, T0 + 5 * SEC);
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].label("alertname"), events[0].transition),
            (Some(kafka_unreachable::ALERT), Transition::Resolved)
        );
        assert_eq!(events[1].label("cause"), Some("event_time_delayed"));
    }

    #[test]
    fn lag_rules_wait_while_catching_up_or_without_data() {
        let mut ev = evaluator(vec![sync_rule(0)]);
        for cause in [Cause::NoData, Cause::CatchingUp] {
            let s = snap(KafkaStatus::Up, cause, 28_800.0);
            assert!(ev.evaluate(&s, T0).is_empty());
            assert_eq!(ev.status(&s)[0].held_back, Some(cause.into()));
        }
    }

    /// More than 10 % of behaviour's records invalid over the window.
    fn invalid_rule() -> AlertRule {
        AlertRule {
            name: "BehaviourInvalid".into(),
            kind: AlertKind::InvalidRatio,
            target: AlertTarget::Stream(1),
            threshold: 0.1,
            clear: 0.05,
            ..sync_rule(0)
        }
    }

    #[test]
    fn invalid_ratio_over_the_window() {
        let mut ev = evaluator(vec![invalid_rule()]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        assert!(ev.evaluate(&s, T0).is_empty());
        s.streams[1].partitions[0].records = 100;
        s.streams[1].partitions[0].invalid[InvalidReason::NotJson] = 25;
        s.streams[1].records = 100;
        s.streams[1].invalid[InvalidReason::NotJson] = 25;
        let fired = ev.evaluate(&s, T0 + SEC);
        assert_eq!(fired[0].annotation("summary"), Some("25.0% of behaviour records are invalid"));
        assert!(!fired[0].annotation("description").unwrap().contains("schema"));
    }

    #[test]
    fn an_invalid_ratio_names_the_writer_schema_without_the_event_time() {
        let mut ev = evaluator(vec![invalid_rule()]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        assert!(ev.evaluate(&s, T0).is_empty());
        s.streams[1].records = 100;
        s.streams[1].invalid[InvalidReason::MissingField] = 40;
        s.streams[1].schemas = vec![crate::schema::SchemaInUse {
            id: 12,
            subject: Some("behaviour-value".into()),
            version: Some(3),
            records: 40,
            problem: Some("schema 12 has no field /created_at".into()),
        }];
        let fired = ev.evaluate(&s, T0 + SEC);
        let description = fired[0].annotation("description").unwrap();
        assert!(description.contains("; schema 12 has no field /created_at"), "{description}");
    }

    #[test]
    fn the_reserved_labels_are_every_label_the_builder_sets() {
        let s = with_consumer(snap(KafkaStatus::Up, Cause::Ok, 0.0), ConsumerCause::Ok, Some(1.0), Some(1.0));
        let mut set = std::collections::BTreeSet::new();
        let targets = [
            AlertTarget::Stream(0),
            AlertTarget::Pair(0),
            AlertTarget::Consumer(0),
            AlertTarget::ConsumerPair { consumer: 0, pair: 0 },
        ];
        for target in targets {
            let rule = AlertRule { target, labels: Vec::new(), ..sync_rule(0) };
            set.extend(
                rule_event(&rule, target, &s, 1.0, Cause::Ok.into(), T0).labels.into_iter().map(|(name, _)| name),
            );
        }
        let reserved: std::collections::BTreeSet<String> = RESERVED_LABELS.iter().map(|l| l.to_string()).collect();
        assert_eq!(set, reserved, "every reserved label is one the builder sets");
    }

    #[test]
    fn invalid_ratio_reads_the_stream_totals_that_survive_a_revoke() {
        let mut ev = evaluator(vec![invalid_rule()]);
        let mut s = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        let mut p1 = s.streams[1].partitions[0].clone();
        p1.partition = 1;
        s.streams[1].partitions[0].records = 1000;
        p1.records = 1000;
        s.streams[1].partitions.push(p1);
        s.streams[1].records = 2000;
        assert!(ev.evaluate(&s, T0).is_empty());
        // a rebalance takes partition 0 away; partition 1 then reads 100 records, half invalid
        s.streams[1].partitions.remove(0);
        s.streams[1].partitions[0].records = 1100;
        s.streams[1].partitions[0].invalid[InvalidReason::NotJson] = 50;
        s.streams[1].records = 2100;
        s.streams[1].invalid[InvalidReason::NotJson] = 50;
        let fired = ev.evaluate(&s, T0 + SEC);
        assert_eq!(fired.len(), 1, "50 of the 100 records read since are invalid");
        assert_eq!(fired[0].annotation("summary"), Some("50.0% of behaviour records are invalid"));
    }

    fn with_consumer(mut s: Snapshot, cause: ConsumerCause, lag: Option<f64>, sync: Option<f64>) -> Snapshot {
        use crate::snapshot::{ConsumerSnapshot, ConsumerStreamSnapshot};
        s.consumers = vec![ConsumerSnapshot {
            name: "analytics".into(),
            group: "analytics-job".into(),
            cause,
            error: None,
            sink: None,
            discovered: false,
            connector: None,
            connector_unknown: None,
            stalled_seconds: 0.0,
            streams: vec![ConsumerStreamSnapshot {
                stream: "behaviour".into(),
                topic: "behaviour".into(),
                watermark_ms: None,
                max_lag_seconds: lag,
                lag_records: 120,
                partitions: Vec::new(),
            }],
            pairs: vec![ConsumerPairSnapshot {
                pair: "orders_behaviour".into(),
                leader: "orders".into(),
                follower: "behaviour".into(),
                sync_lag_seconds: sync,
            }],
        }];
        s
    }

    #[test]
    fn consumer_rules_fire_with_the_consumer_cause_and_wait_for_an_upstream_fault() {
        let lag_rule = AlertRule {
            name: "AnalyticsBehind".into(),
            kind: AlertKind::ConsumerLag,
            target: AlertTarget::Consumer(0),
            threshold: 900.0,
            clear: 600.0,
            ..sync_rule(0)
        };
        let sync = AlertRule {
            name: "AnalyticsSeesBehaviourLate".into(),
            kind: AlertKind::ConsumerSyncLag,
            target: AlertTarget::ConsumerPair { consumer: 0, pair: 0 },
            threshold: 900.0,
            clear: 600.0,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![lag_rule, sync]);
        let ok = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        let upstream = with_consumer(ok.clone(), ConsumerCause::UpstreamFault, Some(28_800.0), Some(28_800.0));
        assert!(ev.evaluate(&upstream, T0).is_empty(), "the stream's rules page for an upstream fault");
        assert_eq!(ev.status(&upstream)[0].held_back, Some(ConsumerCause::UpstreamFault.into()));
        let stopped = with_consumer(ok, ConsumerCause::ConsumerStopped, Some(1_000.0), Some(28_800.0));
        let fired = ev.evaluate(&stopped, T0 + SEC);
        assert_eq!(fired.len(), 2);
        assert_eq!(fired[0].label("cause"), Some("consumer_stopped"));
        assert_eq!(fired[0].label("consumer"), Some("analytics"));
        assert_eq!(fired[0].label("group"), Some("analytics-job"));
        assert_eq!(fired[0].annotation("summary"), Some("analytics is 16m 40s behind its input"));
        assert!(fired[0]
            .annotation("description")
            .unwrap()
            .contains("lag per stream: behaviour 16m 40s (120 records)"));
        assert_eq!(fired[1].label("pair"), Some("orders_behaviour"));
        assert_eq!(fired[1].annotation("summary"), Some("analytics sees behaviour 8h 00m behind orders"));
        assert_eq!(serde_json::to_value(ev.status(&stopped)[0].cause).unwrap(), "consumer_stopped");
    }

    /// `with_consumer`'s consumer, and discovered ones in the given causes (stalled 400 s).
    fn with_discovered(s: Snapshot, discovered: &[(&str, ConsumerCause)]) -> Snapshot {
        let mut s = with_consumer(s, ConsumerCause::ConsumerStopped, Some(2_000.0), None);
        let configured = s.consumers[0].clone();
        for (name, cause) in discovered {
            let mut c = configured.clone();
            (c.name, c.group, c.cause, c.discovered, c.stalled_seconds) =
                (name.to_string(), name.to_string(), *cause, true, 400.0);
            s.consumers.push(c);
        }
        s
    }

    #[test]
    fn a_rule_over_discovered_consumers_fires_once_per_consumer_and_resolves_a_forgotten_one() {
        let stopped_rule = AlertRule {
            name: "DiscoveredJobStopped".into(),
            kind: AlertKind::ConsumerStopped,
            target: AlertTarget::Discovered,
            threshold: 0.0,
            clear: 0.0,
            ..sync_rule(0)
        };
        let lag_rule = AlertRule {
            name: "DiscoveredJobBehind".into(),
            kind: AlertKind::ConsumerLag,
            target: AlertTarget::Discovered,
            threshold: 900.0,
            clear: 600.0,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![stopped_rule, lag_rule]);
        let ok = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        // none discovered yet: each rule listed once, inactive
        let none = with_discovered(ok.clone(), &[]);
        assert!(ev.evaluate(&none, T0).is_empty(), "the configured consumer is not discovered");
        let status = ev.status(&none);
        assert_eq!(
            status.iter().map(|a| (a.target.as_str(), a.state)).collect::<Vec<_>>(),
            [("discovered", AlertState::Inactive), ("discovered", AlertState::Inactive)]
        );
        let two = with_discovered(
            ok.clone(),
            &[("billing-job", ConsumerCause::ConsumerStopped), ("search-indexer", ConsumerCause::ConsumerLagging)],
        );
        let fired = ev.evaluate(&two, T0 + SEC);
        let named: Vec<(&str, Option<&str>, Option<&str>)> =
            fired.iter().map(|e| (e.label("alertname").unwrap(), e.label("consumer"), e.label("cause"))).collect();
        assert_eq!(
            named,
            [
                ("DiscoveredJobStopped", Some("billing-job"), Some("consumer_stopped")),
                ("DiscoveredJobBehind", Some("billing-job"), Some("consumer_stopped")),
                ("DiscoveredJobBehind", Some("search-indexer"), Some("consumer_lagging")),
            ]
        );
        assert_eq!(
            fired[0].annotation("summary"),
            Some("billing-job has committed nothing for 6m 40s while records wait")
        );
        assert!(fired[0].annotation("description").unwrap().contains("committed offsets unchanged for 6m 40s"));
        assert_eq!(fired[0].label("group"), Some("billing-job"));
        assert_eq!(ev.status(&two).len(), 4, "an instance per discovered consumer and rule");
        // billing-job forgotten: its instances resolve; search-indexer's stays
        let one = with_discovered(ok, &[("search-indexer", ConsumerCause::ConsumerLagging)]);
        let resolved = ev.evaluate(&one, T0 + 2 * SEC);
        assert_eq!(resolved.len(), 2);
        assert!(resolved
            .iter()
            .all(|e| e.transition == Transition::Resolved && e.label("consumer") == Some("billing-job")));
        let status = ev.status(&one);
        assert_eq!(
            status.iter().map(|a| (a.name.as_str(), a.target.as_str())).collect::<Vec<_>>(),
            [("DiscoveredJobStopped", "search-indexer"), ("DiscoveredJobBehind", "search-indexer")]
        );
        assert!(matches!(status[1].state, AlertState::Firing { .. }));
    }

    #[test]
    fn a_failed_connector_pages_at_once_naming_the_task_and_waits_while_connect_does_not_answer() {
        use crate::connect::{ConnectSnapshot, ConnectorFault, ConnectorIssue, ConnectorState};
        let rule = AlertRule {
            name: "OrdersConnectorFailed".into(),
            kind: AlertKind::ConnectorFailed,
            target: AlertTarget::Stream(0),
            threshold: 0.0,
            clear: 0.0,
            ..sync_rule(0)
        };
        let mut ev = evaluator(vec![rule]);
        let cluster = |status| ConnectSnapshot {
            name: "cdc".into(),
            url: "http://connect:8083".into(),
            status,
            error: (status == KafkaStatus::Down).then(|| "connection refused".into()),
            polled_at_ms: None,
            connectors: Vec::new(),
        };
        let mut ok = snap(KafkaStatus::Up, Cause::Ok, 0.0);
        ok.connect = vec![cluster(KafkaStatus::Up)];
        assert!(ev.evaluate(&ok, T0).is_empty());
        let mut failed = ok.clone();
        failed.streams[0].cause = Cause::ConnectorFailed;
        failed.streams[0].connector = Some(ConnectorIssue {
            connect: "cdc".into(),
            connector: "orders-cdc".into(),
            fault: ConnectorFault::Failed,
            state: ConnectorState::Failed,
            task: Some(0),
            worker_id: "10.0.0.2:8083".into(),
            error: Some("org.postgresql.util.PSQLException: Connection to 127.0.0.1:5432 refused".into()),
        });
        let fired = ev.evaluate(&failed, T0 + SEC);
        assert_eq!(fired.len(), 1, "for 0: the first poll that sees FAILED pages");
        assert_eq!(fired[0].label("cause"), Some("connector_failed"));
        assert_eq!(fired[0].annotation("summary"), Some("connector orders-cdc of orders failed"));
        assert!(fired[0].annotation("description").unwrap().starts_with(
            "connector orders-cdc task 0 (cdc) on worker 10.0.0.2:8083 is FAILED: org.postgresql.util.PSQLException: Connection to 127.0.0.1:5432 refused; cause: connector_failed"
        ));
        // Connect stops answering: the connector's state is unknown, the alert neither
        // resolves nor fires again; the built-in ConnectUnreachable fires
        let mut unknown = ok.clone();
        unknown.connect = vec![cluster(KafkaStatus::Down)];
        unknown.streams[0].connector_unknown = Some("cdc".into());
        let fired = ev.evaluate(&unknown, T0 + 2 * SEC);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].label("alertname"), Some("ConnectUnreachable"));
        assert_eq!(fired[0].label("connect"), Some("cdc"));
        assert_eq!(
            fired[0].annotation("description").map(|d| d.split(" since ").next().unwrap()),
            Some("GET http://connect:8083/connectors fails")
        );
        let status = ev.status(&unknown);
        assert_eq!(
            status.iter().find(|a| a.name == "OrdersConnectorFailed").unwrap().held_back,
            Some(AlertCause::ConnectUnreachable)
        );
        assert!(matches!(status[0].state, AlertState::Firing { .. }), "ConnectUnreachable listed first");
        // Connect answers, the task runs again: both resolve
        let resolved = ev.evaluate(&ok, T0 + 3 * SEC);
        let names: Vec<_> = resolved.iter().map(|e| (e.label("alertname").unwrap(), e.transition)).collect();
        assert_eq!(
            names,
            [("ConnectUnreachable", Transition::Resolved), ("OrdersConnectorFailed", Transition::Resolved)]
        );
    }
}
