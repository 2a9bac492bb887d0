//! Saving a model while it trains (`saveSnapshot`, e.g. from a progress callback).
//!
//! A training model lives on its training thread, so JavaScript cannot read its weights. A
//! snapshot request is queued instead; the training thread writes it between two steps (the
//! weights of the step just finished) through the trainer's between-steps hook, and settles the
//! request's promise. Requests still queued when the run ends are written by the thread once the
//! model is back, so none is lost or left pending.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use napi::{Env, JsDeferred};
use rnn_core::checkpoint::save_checkpoint;
use rnn_core::model::network::Network;
use rnn_core::train::Trainer;

use crate::errors::NodeError;
use crate::guard::guard;
use crate::model::pairs;

/// Settles a snapshot's promise on the JavaScript thread.
type Settle = Box<dyn FnOnce(Env) -> napi::Result<()> + Send>;

/// One queued snapshot: where to write it, whether with the training state, and its promise.
pub(crate) struct SnapshotRequest {
    pub path: String,
    pub checkpoint: bool,
    pub deferred: JsDeferred<(), Settle>,
}

/// The snapshot requests of one model, shared with its training thread.
pub(crate) type SnapshotQueue = Arc<Mutex<Vec<SnapshotRequest>>>;

/// What a snapshot file holds besides the weights: the model's tokenizer and metadata, fixed
/// while the model trains.
#[derive(Clone)]
pub(crate) struct SnapshotContext {
    pub tokenizer: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl SnapshotContext {
    /// Writes `request` from `network` (and the trainer's state for a checkpoint), then settles
    /// its promise with the outcome.
    pub fn write(&self, request: SnapshotRequest, network: &Network, trainer: Option<&Trainer>) {
        let outcome = guard(|| {
            let state = if request.checkpoint { trainer.map(Trainer::state) } else { None };
            save_checkpoint(
                Path::new(&request.path),
                network,
                state.as_ref(),
                self.tokenizer.as_deref(),
                &pairs(&self.metadata),
            )
            .map_err(NodeError::from)
        });
        request.deferred.resolve(Box::new(move |env| outcome.map_err(|e| e.into_napi(&env))));
    }

    /// Writes every queued request.
    pub fn drain(&self, queue: &SnapshotQueue, network: &Network, trainer: Option<&Trainer>) {
        let requests = std::mem::take(&mut *queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for request in requests {
            self.write(request, network, trainer);
        }
    }
}
