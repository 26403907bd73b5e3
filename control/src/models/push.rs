//! Publishes the active model to the engine (`model.bin` through
//! `Publisher::publish_model`: the model file's bytes, or an empty payload
//! for "no model") when it changed, and keeps the
//! `patronus_model_active_info` gauge in step. The store actor calls
//! [`ModelPusher::push_if_changed`] at start (so a restarted control
//! process re-publishes what is active, or none) and after every model
//! request.

use prometheus::{GaugeVec, Opts};

use crate::error::{Error, Result};
use crate::push::SharedPublisher;
use crate::store::Store;

/// Name of the gauge: 1 with the active model's labels; no sample when
/// none is active.
pub const MODEL_ACTIVE_INFO: &str = "patronus_model_active_info";

/// The active model gauge; cheap to clone (a handle). Register
/// [`ModelInfoGauge::collector`] in the metrics registry.
#[derive(Clone, Debug)]
pub struct ModelInfoGauge {
    gauge: GaugeVec,
}

impl ModelInfoGauge {
    pub fn new() -> prometheus::Result<Self> {
        let gauge = GaugeVec::new(
            Opts::new(
                MODEL_ACTIVE_INFO,
                "The classifier model pushed to the engine (1; absent when none): its SHA-256 and registry version.",
            ),
            &["sha256", "version"],
        )?;
        Ok(ModelInfoGauge { gauge })
    }

    /// Shows `active` (`(sha256, version)`) or nothing.
    pub fn set(&self, active: Option<(&str, u64)>) {
        self.gauge.reset();
        if let Some((sha, version)) = active {
            self.gauge
                .with_label_values(&[sha, &version.to_string()])
                .set(1.0);
        }
    }

    /// The collector to register.
    pub fn collector(&self) -> Box<dyn prometheus::core::Collector> {
        Box::new(self.gauge.clone())
    }
}

/// Publishes the active model when it changed.
#[derive(Debug)]
pub struct ModelPusher {
    /// None: no engine link (the gauge is still kept).
    publisher: Option<SharedPublisher>,
    /// What was last published: `Some(None)` = no model; None = nothing
    /// yet by this process.
    last: Option<Option<(i64, String)>>,
    info: ModelInfoGauge,
}

impl ModelPusher {
    pub fn new(publisher: Option<SharedPublisher>, info: ModelInfoGauge) -> Self {
        ModelPusher {
            publisher,
            last: None,
            info,
        }
    }

    /// Reads the active model and publishes it if it differs from the last
    /// publication (always the first time); the file number, if one went
    /// out. A failed publication is retried after the next model request.
    pub fn push_if_changed(&mut self, store: &mut Store) -> Result<Option<u64>> {
        let active = store.active_model_bytes()?;
        let key = active.as_ref().map(|a| (a.id, a.sha256.clone()));
        if self.last.as_ref() == Some(&key) {
            return Ok(None);
        }
        let number = match &self.publisher {
            Some(p) => {
                let payload = active.as_ref().map_or(&[][..], |a| &a.bytes[..]);
                Some(
                    p.lock()
                        .map_err(|_| {
                            Error::Storage("shared memory: publisher lock poisoned".into())
                        })?
                        .publish_model(payload)
                        .map_err(|e| Error::Storage(format!("shared memory: {e}")))?,
                )
            }
            None => None,
        };
        self.info
            .set(active.as_ref().map(|a| (a.sha256.as_str(), a.version)));
        self.last = Some(key);
        Ok(number)
    }
}
