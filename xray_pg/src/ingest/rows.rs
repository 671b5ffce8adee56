//! Filling the computed columns of the new `xray.scan_results` row, and
//! recognising a row that is being restored rather than submitted.

use super::*;

/// The columns the trigger computes, written into the new row with one
/// `heap_modify_tuple`. pgrx's `set_by_name` copies the whole row, payload
/// included, for every column it sets.
pub(super) struct RowFill<'a> {
    trigger: &'a PgTrigger<'a>,
    row: PgHeapTuple<'a, AllocatedByPostgres>,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    replace: Vec<bool>,
}

impl<'a> RowFill<'a> {
    pub(super) fn new(trigger: &'a PgTrigger<'a>, row: PgHeapTuple<'a, AllocatedByPostgres>) -> Self {
        let n = row.len();
        RowFill { trigger, row, values: vec![pg_sys::Datum::from(0); n], nulls: vec![false; n], replace: vec![false; n] }
    }

    pub(super) fn set<T: IntoDatum>(&mut self, column: &str, value: T) {
        let Some((attno, att)) = self.row.get_attribute_by_name(column) else {
            raise("42703", format!("xray.scan_results: column {column} is missing"));
        };
        if !T::is_compatible_with(att.type_oid().value()) {
            raise("42804", format!("xray.scan_results.{column}: unexpected column type"));
        }
        let i = attno.get() - 1;
        let datum = value.into_datum();
        self.nulls[i] = datum.is_none();
        self.values[i] = datum.unwrap_or(pg_sys::Datum::from(0));
        self.replace[i] = true;
    }

    pub(super) fn into_row(mut self) -> PgHeapTuple<'a, AllocatedByPostgres> {
        // SAFETY: tg_relation and tg_trigtuple are the row being inserted and
        // its relation, valid for the whole trigger call; the three arrays
        // have one entry per attribute of that relation's descriptor.
        unsafe {
            let data = self.trigger.trigger_data();
            let tupdesc = (*data.tg_relation).rd_att;
            let tuple = pg_sys::heap_modify_tuple(
                data.tg_trigtuple,
                tupdesc,
                self.values.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
                self.replace.as_mut_ptr(),
            );
            drop(self.row);
            PgHeapTuple::from_heap_tuple(pgrx::PgTupleDesc::from_pg_unchecked(tupdesc), tuple)
        }
    }
}

/// A row that already carries the columns the trigger fills is a scan being
/// reloaded (pg_restore, or a COPY of a dump): it was diffed when it was first
/// ingested, and its events and state are reloaded with the other tables, so
/// it is stored as it is. Only the table owner can write those columns; a
/// loader is granted INSERT (payload) alone.
pub(super) fn is_restored_row(new: &PgHeapTuple<'_, AllocatedByPostgres>) -> Result<bool, pgrx::datum::TryFromDatumError> {
    let status: Option<String> = new.get_by_name("status")?;
    if status.is_none() {
        return Ok(false);
    }
    let scan_id: Option<pgrx::Uuid> = new.get_by_name("scan_id")?;
    let tenant_id: Option<pgrx::Uuid> = new.get_by_name("tenant_id")?;
    let payload: Option<JsonB> = new.get_by_name("payload")?;
    let from_payload = |key: &str| -> Option<uuid::Uuid> {
        payload.as_ref()?.0.get("scan")?.get(key)?.as_str()?.parse().ok()
    };
    let as_uuid = |u: Option<pgrx::Uuid>| u.map(|u| uuid::Uuid::from_bytes(*u.as_bytes()));
    if as_uuid(scan_id).is_none()
        || as_uuid(scan_id) != from_payload("scan_id")
        || as_uuid(tenant_id) != from_payload("tenant_id")
    {
        raise(
            "22023",
            "scan_results: a row that carries a status is stored as restored data, \
             so its scan_id and tenant_id must match its payload; insert only the payload to ingest a scan",
        );
    }
    Ok(true)
}
