//! Container logs of the fake kubelet: bytes appended while a container runs, read whole or
//! followed (`pods/{name}/log?follow=true`) until the container terminates.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

/// `(namespace, pod, container)`.
pub type LogKey = (String, String, String);

#[derive(Debug, Default)]
struct ContainerLog {
    bytes: Vec<u8>,
    done: bool,
}

#[derive(Debug)]
pub struct Logs {
    map: Mutex<HashMap<LogKey, ContainerLog>>,
    changed: watch::Sender<u64>,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            map: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl Logs {
    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Appends `bytes` to the log of a container (creating it).
    pub fn append(&self, key: &LogKey, bytes: &[u8]) {
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(key.clone())
                .or_default()
                .bytes
                .extend_from_slice(bytes);
        }
        self.bump();
    }

    /// Marks a container's log complete: followers stop after reading it.
    pub fn finish(&self, key: &LogKey) {
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(key.clone()).or_default().done = true;
        }
        self.bump();
    }

    /// Forgets the logs of every container of `pod` in `namespace` (the pod was removed);
    /// followers stop.
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|(ns, p, _), _| !(ns == namespace && p == pod));
        }
        self.bump();
    }

    /// The bytes after `offset` and whether the log is complete; `None` when there is no
    /// such log.
    pub fn read_from(&self, key: &LogKey, offset: usize) -> Option<(Vec<u8>, bool)> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .map(|l| (l.bytes.get(offset..).unwrap_or_default().to_vec(), l.done))
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
