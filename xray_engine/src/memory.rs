//! An in-memory exposure store with the same semantics as the database
//! tables. It is the reference the pure tests and benchmarks diff against;
//! production state lives in PostgreSQL (`xray.exposures`).

use std::collections::BTreeMap;

use crate::contract::ScanPayload;
use crate::diff::{DiffOutcome, EventType, ExposureStatus, PriorState};

#[derive(Debug, Clone, PartialEq)]
pub struct StoredExposure {
    pub prior: PriorState,
    pub detail: String,
    pub last_change_type: Option<EventType>,
}

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    pub rows: BTreeMap<String, StoredExposure>,
}

impl MemoryStore {
    /// The rows the database would load for this payload: the scope's
    /// non-fixed exposures plus every fixed one (so reappearance is seen).
    pub fn prior_for(&self, payload: &ScanPayload) -> Vec<PriorState> {
        let scope = payload.scope_asset_ids();
        self.rows
            .values()
            .filter(|r| scope.contains(&r.prior.asset_id))
            .map(|r| r.prior.clone())
            .collect()
    }

    pub fn apply(&mut self, outcome: &DiffOutcome) {
        for u in &outcome.upserts {
            let e = &u.exposure;
            let last_change_type = u
                .last_change_type
                .or_else(|| self.rows.get(&e.identity_key).and_then(|r| r.last_change_type));
            self.rows.insert(
                e.identity_key.clone(),
                StoredExposure {
                    prior: PriorState::from_upsert(u),
                    detail: e.detail.clone(),
                    last_change_type,
                },
            );
        }
        for key in &outcome.fixed {
            if let Some(r) = self.rows.get_mut(key) {
                r.prior.status = ExposureStatus::Fixed;
                r.last_change_type = Some(EventType::Fixed);
            }
        }
    }
}
