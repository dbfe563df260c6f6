//! The `runner.v1` and `ping.v1` messages, generated at build time from `runner/proto/**`
//! (our own `.proto` files, written from the field tables in docs/internals/gitea-protocol.md) by prost-build,
//! with proto3-JSON `serde` impls from pbjson-build (camelCase names, int64 as strings,
//! enums by name) for servers and tests that speak `application/json`.
//!
//! Maps are `BTreeMap`s, so encoding is deterministic. `google.protobuf.Struct` and
//! `Timestamp` are [`pbjson_types`]'s, re-exported as [`well_known`].

pub use pbjson_types as well_known;

/// `package runner.v1`: the runner service's messages.
pub mod runner {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_debug_implementations)]
        include!(concat!(env!("OUT_DIR"), "/runner.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/runner.v1.serde.rs"));
    }
}

/// `package ping.v1`: the ping service's messages.
pub mod ping {
    pub mod v1 {
        #![allow(clippy::all, clippy::pedantic, missing_debug_implementations)]
        include!(concat!(env!("OUT_DIR"), "/ping.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/ping.v1.serde.rs"));
    }
}

#[cfg(test)]
mod tests {
    //! Golden encodings built by hand from the protocol's field numbers and wire
    //! types (varint = 0, length-delimited = 2), so a wrong number in a `.proto` fails here.

    use std::collections::BTreeMap;

    use prost::Message;

    use super::ping::v1::PingRequest;
    use super::runner::v1::{
        LogRow, RegisterRequest, Result as TaskResult, StepState, Task, TaskNeed, TaskState,
        UpdateLogRequest, UpdateTaskRequest,
    };
    use super::well_known::Timestamp;

    /// A protobuf message written field by field.
    #[derive(Default)]
    struct Wire(Vec<u8>);

    impl Wire {
        fn raw_varint(&mut self, mut v: u64) {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(byte);
                    return;
                }
                self.0.push(byte | 0x80);
            }
        }
        fn varint(mut self, field: u64, v: u64) -> Self {
            self.raw_varint(field << 3);
            self.raw_varint(v);
            self
        }
        fn bytes(mut self, field: u64, v: &[u8]) -> Self {
            self.raw_varint((field << 3) | 2);
            self.raw_varint(v.len() as u64);
            self.0.extend_from_slice(v);
            self
        }
        fn string(self, field: u64, v: &str) -> Self {
            self.bytes(field, v.as_bytes())
        }
        fn message(self, field: u64, m: Wire) -> Self {
            self.bytes(field, &m.0)
        }
    }

    fn timestamp(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    /// `google.protobuf.Timestamp`: 1 seconds, 2 nanos.
    fn timestamp_wire(seconds: u64, nanos: u64) -> Wire {
        Wire::default().varint(1, seconds).varint(2, nanos)
    }

    #[test]
    fn register_request_matches_the_field_table() {
        let msg = RegisterRequest {
            name: "r1".into(),
            token: "tok".into(),
            version: "v1.0".into(),
            labels: vec!["ubuntu".into(), "k8s".into()],
            ephemeral: true,
            capabilities: vec!["cancelling".into()],
            ..Default::default()
        };
        let want = Wire::default()
            .string(1, "r1")
            .string(2, "tok")
            .string(5, "v1.0")
            .string(6, "ubuntu")
            .string(6, "k8s")
            .varint(7, 1)
            .string(8, "cancelling");
        assert_eq!(msg.encode_to_vec(), want.0);
        assert_eq!(RegisterRequest::decode(&want.0[..]).unwrap(), msg);
    }

    #[test]
    fn update_log_request_matches_the_field_table() {
        let msg = UpdateLogRequest {
            task_id: 300,
            index: 5,
            rows: vec![LogRow {
                time: Some(timestamp(1_700_000_000, 250)),
                content: "hello".into(),
            }],
            no_more: true,
        };
        let row = Wire::default()
            .message(1, timestamp_wire(1_700_000_000, 250))
            .string(2, "hello");
        let want = Wire::default()
            .varint(1, 300)
            .varint(2, 5)
            .message(3, row)
            .varint(4, 1);
        assert_eq!(msg.encode_to_vec(), want.0);
    }

    #[test]
    fn update_task_request_with_a_step_matches_the_field_table() {
        let msg = UpdateTaskRequest {
            state: Some(TaskState {
                id: 9,
                result: TaskResult::Failure as i32,
                started_at: Some(timestamp(100, 0)),
                stopped_at: Some(timestamp(200, 0)),
                steps: vec![StepState {
                    id: 2,
                    result: TaskResult::Skipped as i32,
                    started_at: Some(timestamp(110, 0)),
                    stopped_at: Some(timestamp(120, 0)),
                    log_index: 40,
                    log_length: 3,
                }],
            }),
            outputs: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        let step = Wire::default()
            .varint(1, 2)
            .varint(2, 4)
            .message(3, Wire::default().varint(1, 110))
            .message(4, Wire::default().varint(1, 120))
            .varint(5, 40)
            .varint(6, 3);
        let state = Wire::default()
            .varint(1, 9)
            .varint(2, 2)
            .message(3, Wire::default().varint(1, 100))
            .message(4, Wire::default().varint(1, 200))
            .message(5, step);
        // A map entry is a message with key = 1 and value = 2.
        let entry = Wire::default().string(1, "k").string(2, "v");
        let want = Wire::default().message(1, state).message(2, entry);
        assert_eq!(msg.encode_to_vec(), want.0);
    }

    #[test]
    #[allow(deprecated)] // `machine` (5) is deprecated but still on the wire
    fn task_decodes_from_the_field_table() {
        let need = Wire::default()
            .message(1, Wire::default().string(1, "out").string(2, "42"))
            .varint(2, 1);
        let wire = Wire::default()
            .varint(1, 77)
            .bytes(2, b"jobs: {}")
            .message(4, Wire::default().string(1, "GITHUB_TOKEN").string(2, "s3"))
            .string(5, "unused")
            .message(6, Wire::default().string(1, "build").message(2, need))
            .message(7, Wire::default().string(1, "V").string(2, "x"));
        let task = Task::decode(&wire.0[..]).unwrap();
        let want = Task {
            id: 77,
            workflow_payload: Some(b"jobs: {}".to_vec()),
            context: None,
            secrets: BTreeMap::from([("GITHUB_TOKEN".into(), "s3".into())]),
            machine: "unused".into(),
            needs: BTreeMap::from([(
                "build".into(),
                TaskNeed {
                    outputs: BTreeMap::from([("out".into(), "42".into())]),
                    result: TaskResult::Success as i32,
                },
            )]),
            vars: BTreeMap::from([("V".into(), "x".into())]),
        };
        assert_eq!(task, want);
        assert_eq!(task.encode_to_vec(), wire.0);
    }

    #[test]
    fn task_context_is_a_struct_at_field_three() {
        // Struct: 1 fields (map<string, Value>); Value: 3 string_value.
        let value = Wire::default().string(3, "push");
        let context =
            Wire::default().message(1, Wire::default().string(1, "event_name").message(2, value));
        let wire = Wire::default().varint(1, 1).message(3, context);
        let task = Task::decode(&wire.0[..]).unwrap();
        let fields = task.context.unwrap().fields;
        assert_eq!(
            fields.get("event_name").and_then(|v| v.kind.clone()),
            Some(super::well_known::value::Kind::StringValue("push".into()))
        );
    }

    #[test]
    fn ping_request_data_is_field_one() {
        let msg = PingRequest { data: "hi".into() };
        assert_eq!(msg.encode_to_vec(), Wire::default().string(1, "hi").0);
    }

    #[test]
    fn json_uses_proto3_names_strings_for_int64_and_enum_names() {
        let msg = UpdateLogRequest {
            task_id: 7,
            index: 0,
            rows: vec![LogRow {
                time: Some(timestamp(0, 0)),
                content: "x".into(),
            }],
            no_more: true,
        };
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["taskId"], "7");
        assert_eq!(json["noMore"], true);
        assert_eq!(json["rows"][0]["time"], "1970-01-01T00:00:00+00:00");
        let state = TaskState {
            result: TaskResult::Success as i32,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&state).unwrap()["result"],
            "RESULT_SUCCESS"
        );
        let back: UpdateLogRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);
    }
}
