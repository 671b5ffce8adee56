//! One function per page: validate, run bounded queries, return the rows as JSON and
//! HTML. Every list is keyset-paginated on an indexed order with a capped LIMIT; the
//! sessions' statement_timeout is the backstop.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;

use super::chart::line_chart;
use super::html::{a, enc, esc, fields, next_link, status_class, t, table, Col};
use super::params::{cursor, parse_cid, parse_ip, Params};
use super::{AppError, AppState, Req, View};

/// Largest CAR read to show a screenshot; bundles are small (the collector caps captures).
const MAX_CAR_BYTES: u64 = 64 << 20;

type Sql = Vec<Box<dyn ToSql + Sync + Send>>;

/// Rows of `select` as JSON objects (column name → value).
async fn rows(c: &impl deadpool_postgres::GenericClient, select: &str, args: &Sql) -> Result<Vec<Value>, AppError> {
    let sql = format!("SELECT to_jsonb(x) FROM ({select}) x");
    let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
    Ok(c.query(&sql, &refs).await?.iter().map(|r| r.get::<_, Value>(0)).collect())
}

/// Adds a condition with its parameter; `{}` in `cond` is replaced by the parameter's `$n`.
fn push(wh: &mut Vec<String>, args: &mut Sql, cond: &str, v: impl ToSql + Sync + Send + 'static) {
    args.push(Box::new(v));
    wh.push(cond.replace("{}", &format!("${}", args.len())));
}

fn where_clause(wh: &[String]) -> String {
    if wh.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", wh.join(" AND "))
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The "next page" link, when the page is full: the cursor is the last row's sort key.
fn next(path: &str, p: &Params, rows: &[Value], limit: i64, key: impl Fn(&Value) -> String) -> Option<String> {
    (rows.len() as i64 == limit).then(|| format!("{path}?{}", p.with("after", rows.last().map(&key).as_deref())))
}

fn host_link(r: &Value) -> String {
    a(&format!("/hosts/{}", enc(s(&r["ip"]))), &t(&r["ip"]))
}

fn cid_link(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    a(&format!("/bundles/{}", enc(s(v))), &t(v))
}

// ---------------------------------------------------------------- nweb

pub async fn search(st: &AppState, r: &Req) -> Result<View, AppError> {
    let p = Params::parse(r.query.as_deref(), &["ip", "port", "service", "product", "from", "to", "limit", "after"])?;
    let limit = p.limit()?;
    let (mut wh, mut args): (Vec<String>, Sql) = (vec![], vec![]);
    if let Some(net) = p.net("ip")? {
        push(&mut wh, &mut args, "s.ip <<= {}::text::inet", net);
    }
    if let Some(port) = p.port()? {
        push(&mut wh, &mut args, "s.port = {}::int", port);
    }
    if let Some(service) = p.word("service")? {
        push(&mut wh, &mut args, "lower(s.service) = {}::text", service);
    }
    if let Some(product) = p.text("product")? {
        // A case-insensitive prefix written as lower() LIKE so that an index on
        // (lower(product) text_pattern_ops) can serve it; '_' is the only LIKE wildcard
        // text() lets through.
        push(&mut wh, &mut args, "lower(s.product) LIKE {}::text", format!("{}%", product.to_lowercase().replace('_', "\\_")));
    }
    if let Some(from) = p.time("from")? {
        push(&mut wh, &mut args, "s.ts >= {}::timestamptz", from);
    }
    if let Some(to) = p.time("to")? {
        push(&mut wh, &mut args, "s.ts < {}::timestamptz", to);
    }
    if let Some(c) = cursor(&p, 3)? {
        let ip = parse_ip("after", c[0])?;
        let cid = parse_cid(c[1])?;
        let line: i32 = c[2].parse().map_err(|_| AppError::bad("after: not a cursor from a 'next page' link"))?;
        args.push(Box::new(ip));
        args.push(Box::new(cid));
        args.push(Box::new(line));
        let n = args.len();
        wh.push(format!("(s.ip, s.bundle_cid, s.line_no) > (${}::text::inet, ${}::text, ${}::int)", n - 2, n - 1, n));
    }
    args.push(Box::new(limit));
    let sql = format!(
        "SELECT host(s.ip) AS ip, s.proto, s.port, s.state, s.service, s.product, s.version, s.ts, s.vantage,
                s.bundle_cid, s.line_no
           FROM nweb.scanprint s {} ORDER BY s.ip, s.bundle_cid, s.line_no LIMIT ${}::bigint",
        where_clause(&wh),
        args.len()
    );
    let c = st.0.pool.get().await?;
    let found = rows(&c, &sql, &args).await?;
    let next = next("/search", &p, &found, limit, |r| {
        format!("{}|{}|{}", s(&r["ip"]), s(&r["bundle_cid"]), r["line_no"])
    });
    let val = |k: &str| p.get(k).map(esc).unwrap_or_default();
    let form = format!(
        "<form method=\"get\" action=\"/search\"><label>IP or CIDR <input name=\"ip\" value=\"{}\"></label>\
         <label>Port <input name=\"port\" value=\"{}\"></label><label>Service <input name=\"service\" value=\"{}\"></label>\
         <label>Product <input name=\"product\" value=\"{}\"></label><label>From <input name=\"from\" value=\"{}\"></label>\
         <label>To <input name=\"to\" value=\"{}\"></label><button type=\"submit\">Search</button></form>\
         <form id=\"xray\" method=\"get\" action=\"/xray/exposures\"><label>XRAY tenant <input name=\"tenant\" style=\"width:22em\" \
         placeholder=\"tenant UUID\"></label><button type=\"submit\">Open exposures</button></form>",
        val("ip"), val("port"), val("service"), val("product"), val("from"), val("to")
    );
    let cols: &[Col] = &[
        ("IP", &host_link),
        ("Port", &|r| format!("{}/{}", t(&r["port"]), t(&r["proto"]))),
        ("State", &|r| t(&r["state"])),
        ("Service", &|r| t(&r["service"])),
        ("Product", &|r| format!("{} {}", t(&r["product"]), t(&r["version"]))),
        ("Seen", &|r| t(&r["ts"])),
        ("Vantage", &|r| t(&r["vantage"])),
        ("Bundle", &|r| cid_link(&r["bundle_cid"])),
    ];
    let html = format!(
        "<h1>Search the scanprint</h1>{form}<p>{} rows shown (at most {limit} per page)</p>{}{}",
        found.len(),
        table(&found, cols),
        next_link(next.as_deref())
    );
    Ok(View { title: "Search".into(), json: json!({"rows": found, "next": next}), html })
}

pub async fn host(st: &AppState, r: &Req) -> Result<View, AppError> {
    let ip = parse_ip("ip", r.path.first().map_or("", String::as_str))?;
    let p = Params::parse(r.query.as_deref(), &["limit", "after"])?;
    let limit = p.limit()?;
    let c = st.0.pool.get().await?;
    let mut args: Sql = vec![Box::new(ip.clone())];
    let mut keyset = String::new();
    if let Some(k) = cursor(&p, 3)? {
        let ts = chrono::DateTime::parse_from_rfc3339(k[0]).map_err(|_| AppError::bad("after: not a cursor from a 'next page' link"))?;
        let line: i32 = k[2].parse().map_err(|_| AppError::bad("after: not a cursor from a 'next page' link"))?;
        args.push(Box::new(ts));
        args.push(Box::new(parse_cid(k[1])?));
        args.push(Box::new(line));
        keyset = "AND (s.ts, s.bundle_cid, s.line_no) < ($2::timestamptz, $3::text, $4::int)".into();
    }
    args.push(Box::new(limit));
    let obs = rows(
        &c,
        &format!(
            "SELECT s.ts, s.proto, s.port, s.state, s.service, s.product, s.version, s.banner_sha256, s.cert_fpr,
                    s.tool, s.vantage, s.bundle_cid, s.line_no
               FROM nweb.scanprint s WHERE s.ip = $1::text::inet {keyset}
              ORDER BY s.ts DESC, s.bundle_cid DESC, s.line_no DESC LIMIT ${}::bigint",
            args.len()
        ),
        &args,
    )
    .await?;
    let ip_arg: Sql = vec![Box::new(ip.clone())];
    let ports = rows(
        &c,
        "SELECT proto, port, state, service, product, version, seen_at, bundle_cid
           FROM nweb.v_port_latest WHERE ip = $1::text::inet ORDER BY proto, port LIMIT 1000",
        &ip_arg,
    )
    .await?;
    let bundles = rows(
        &c,
        "SELECT b.cid, b.status, b.reason, b.tool, b.submitter, b.merkle_root, b.scan_finished_at
           FROM nweb.v_bundles b
          WHERE b.cid IN (SELECT DISTINCT s.bundle_cid FROM nweb.scanprint s WHERE s.ip = $1::text::inet LIMIT 200)
          ORDER BY b.scan_finished_at DESC NULLS LAST, b.cid LIMIT 200",
        &ip_arg,
    )
    .await?;
    let mut shots = rows(
        &c,
        "SELECT b.cid, f ->> 'path' AS path, f ->> 'sha256' AS sha256
           FROM nweb.bundles b CROSS JOIN LATERAL jsonb_array_elements(coalesce(b.manifest -> 'artifacts', '[]')) f
          WHERE b.status = 'verified'
            AND b.cid IN (SELECT DISTINCT s.bundle_cid FROM nweb.scanprint s WHERE s.ip = $1::text::inet LIMIT 200)
            AND starts_with(f ->> 'path', 'assets/screenshots/' || $1::text || '/')
          ORDER BY f ->> 'path' DESC LIMIT 20",
        &ip_arg,
    )
    .await?;
    for shot in &mut shots {
        let cid = s(&shot["cid"]).to_string();
        shot["available"] = json!(car_path(st, &cid).is_some_and(|f| f.is_file()));
    }
    let next = next(&format!("/hosts/{}", enc(&ip)), &p, &obs, limit, |r| {
        format!("{}|{}|{}", s(&r["ts"]), s(&r["bundle_cid"]), r["line_no"])
    });
    let shots_html = if shots.is_empty() {
        "<p class=\"empty\">No screenshots in this host's bundles.</p>".to_string()
    } else {
        shots
            .iter()
            .map(|sh| {
                let src = format!("/screenshots/{}/{}", enc(s(&sh["cid"])), s(&sh["path"]).split('/').map(enc).collect::<Vec<_>>().join("/"));
                let img = if sh["available"] == json!(true) {
                    format!("<img class=\"shot\" alt=\"{}\" src=\"{}\">", esc(s(&sh["path"])), esc(&src))
                } else {
                    "<span class=\"empty\">not available (no CAR of this bundle here)</span>".into()
                };
                format!("<figure>{img}<figcaption>{} sha256 {}</figcaption></figure>", t(&sh["path"]), t(&sh["sha256"]))
            })
            .collect()
    };
    let html = format!(
        "<h1>Host {}</h1><h2>Ports now</h2>{}<h2>Screenshots</h2>{shots_html}<h2>Bundles</h2>{}<h2>Every observation</h2>{}{}",
        esc(&ip),
        table(&ports, &[
            ("Port", &|r| format!("{}/{}", t(&r["port"]), t(&r["proto"]))),
            ("State", &|r| t(&r["state"])),
            ("Service", &|r| t(&r["service"])),
            ("Product", &|r| format!("{} {}", t(&r["product"]), t(&r["version"]))),
            ("Last seen", &|r| t(&r["seen_at"])),
            ("Bundle", &|r| cid_link(&r["bundle_cid"])),
        ]),
        table(&bundles, &[
            ("CID", &|r| cid_link(&r["cid"])),
            ("Status", &|r| status_class(&r["status"])),
            ("Reason", &|r| t(&r["reason"])),
            ("Tool", &|r| t(&r["tool"])),
            ("Submitter", &|r| t(&r["submitter"])),
            ("Merkle root", &|r| t(&r["merkle_root"])),
        ]),
        table(&obs, &[
            ("Seen", &|r| t(&r["ts"])),
            ("Port", &|r| format!("{}/{}", t(&r["port"]), t(&r["proto"]))),
            ("State", &|r| t(&r["state"])),
            ("Service", &|r| t(&r["service"])),
            ("Product", &|r| format!("{} {}", t(&r["product"]), t(&r["version"]))),
            ("Tool", &|r| t(&r["tool"])),
            ("Vantage", &|r| t(&r["vantage"])),
            ("Bundle", &|r| cid_link(&r["bundle_cid"])),
        ]),
        next_link(next.as_deref())
    );
    Ok(View {
        title: format!("Host {ip}"),
        json: json!({"ip": ip, "ports": ports, "screenshots": shots, "bundles": bundles, "observations": obs, "next": next}),
        html,
    })
}

pub async fn bundles(st: &AppState, r: &Req) -> Result<View, AppError> {
    let p = Params::parse(r.query.as_deref(), &["status", "limit", "after"])?;
    let limit = p.limit()?;
    let (mut wh, mut args): (Vec<String>, Sql) = (vec![], vec![]);
    if let Some(status) = p.choice("status", &["verified", "invalid", "pending"])? {
        push(&mut wh, &mut args, "b.status = {}::text", status);
    }
    if let Some(k) = cursor(&p, 2)? {
        let ts = chrono::DateTime::parse_from_rfc3339(k[0]).map_err(|_| AppError::bad("after: not a cursor from a 'next page' link"))?;
        args.push(Box::new(ts));
        args.push(Box::new(parse_cid(k[1])?));
        wh.push(format!("(b.first_seen_at, b.cid) < (${}::timestamptz, ${}::text)", args.len() - 1, args.len()));
    }
    args.push(Box::new(limit));
    let sql = format!(
        "SELECT b.cid, b.status, b.reason, b.tool, b.dataset_type, b.submitter, b.merkle_root, b.attested_merkle_root,
                b.scanprint_lines, b.first_seen_at
           FROM nweb.v_bundles b {} ORDER BY b.first_seen_at DESC, b.cid DESC LIMIT ${}::bigint",
        where_clause(&wh),
        args.len()
    );
    let c = st.0.pool.get().await?;
    let found = rows(&c, &sql, &args).await?;
    let next = next("/bundles", &p, &found, limit, |r| format!("{}|{}", s(&r["first_seen_at"]), s(&r["cid"])));
    let html = format!(
        "<h1>Bundles</h1><p>Filter: {} {} {} {}</p>{}{}",
        a("/bundles", "all"),
        a("/bundles?status=verified", "verified"),
        a("/bundles?status=invalid", "invalid"),
        a("/bundles?status=pending", "pending"),
        table(&found, &[
            ("CID", &|r| cid_link(&r["cid"])),
            ("Status", &|r| status_class(&r["status"])),
            ("Reason", &|r| t(&r["reason"])),
            ("Tool", &|r| t(&r["tool"])),
            ("Lines", &|r| t(&r["scanprint_lines"])),
            ("Submitter", &|r| t(&r["submitter"])),
            ("Merkle root", &|r| t(&r["merkle_root"])),
            ("First seen", &|r| t(&r["first_seen_at"])),
        ]),
        next_link(next.as_deref())
    );
    Ok(View { title: "Bundles".into(), json: json!({"rows": found, "next": next}), html })
}

pub async fn bundle(st: &AppState, r: &Req) -> Result<View, AppError> {
    let cid = parse_cid(r.path.first().map_or("", String::as_str))?;
    Params::parse(r.query.as_deref(), &[])?;
    let c = st.0.pool.get().await?;
    let arg: Sql = vec![Box::new(cid.clone())];
    let Some(b) = rows(
        &c,
        "SELECT v.*, b.computed_merkle_root, b.target_spec_cid, b.manifest_sha256, b.manifest -> 'artifacts' AS artifacts
           FROM nweb.v_bundles v LEFT JOIN nweb.bundles b ON b.cid = v.cid WHERE v.cid = $1::text LIMIT 1",
        &arg,
    )
    .await?
    .into_iter()
    .next() else {
        return Err(AppError::not_found(format!("no bundle {cid} is known (neither checked nor attested)")));
    };
    let atts = rows(
        &c,
        "SELECT a.kind, a.chain_id, a.block_number, a.block_time, a.tx_hash, a.log_index, a.uid, a.attester, a.payload
           FROM nweb.attestations a WHERE a.kind = 'ScanSubmission' AND a.cid = $1::text
          ORDER BY a.block_time, a.attestation_id LIMIT 20",
        &arg,
    )
    .await?;
    let checks = rows(
        &c,
        "SELECT checked_at, available, gateways_ok, attempts, reason, reason_detail, checker
           FROM nweb.availability_checks WHERE cid = $1::text ORDER BY checked_at DESC LIMIT 20",
        &arg,
    )
    .await?;
    let challenges = rows(
        &c,
        "SELECT challenge_id, reason_code, challenger, filed_at, grace_ends_at, resolved_at, state
           FROM nweb.v_challenges WHERE cid = $1::text ORDER BY filed_at DESC LIMIT 20",
        &arg,
    )
    .await?;
    let hosts = rows(
        &c,
        "SELECT host(ip) AS ip FROM (SELECT DISTINCT s.ip FROM nweb.scanprint s WHERE s.bundle_cid = $1::text) h
          ORDER BY ip LIMIT 100",
        &arg,
    )
    .await?;
    let html = format!(
        "<h1>Bundle <span class=\"cid\">{}</span></h1><p>Status: {}</p>{}\
         <h2>Attestation</h2>{}<h2>Availability checks</h2>{}<h2>Challenges</h2>{}<h2>Hosts (first 100)</h2>{}<h2>Artifacts</h2>{}",
        esc(&cid),
        status_class(&b["status"]),
        fields(&b, &[
            ("CID", "cid"), ("Status", "status"), ("Reason code", "reason"), ("Reason detail", "reason_detail"),
            ("Merkle root", "merkle_root"), ("Computed root", "computed_merkle_root"),
            ("Attested root", "attested_merkle_root"), ("Submitter", "submitter"), ("Tool", "tool"),
            ("Tool version", "tool_version"), ("Dataset", "dataset_type"), ("Cost", "cost_kind"),
            ("Vantage", "vantage"), ("Target spec CID", "target_spec_cid"), ("Scan started", "scan_started_at"),
            ("Scan finished", "scan_finished_at"), ("Scanprint lines", "scanprint_lines"),
            ("Checked", "checked_at"), ("Verified", "verified_at"),
        ]),
        if atts.is_empty() { "<p class=\"empty\">Not attested on chain (yet).</p>".to_string() } else {
            table(&atts, &[
                ("Attester", &|r| t(&r["attester"])),
                ("Chain", &|r| t(&r["chain_id"])),
                ("Block", &|r| t(&r["block_number"])),
                ("Time", &|r| t(&r["block_time"])),
                ("Tx", &|r| t(&r["tx_hash"])),
                ("UID", &|r| t(&r["uid"])),
                ("Attested root", &|r| t(&r["payload"]["merkleRoot"])),
            ])
        },
        table(&checks, &[
            ("Checked", &|r| t(&r["checked_at"])),
            ("Available", &|r| t(&r["available"])),
            ("Sources OK", &|r| format!("{}/{}", t(&r["gateways_ok"]), t(&r["attempts"]))),
            ("Reason", &|r| t(&r["reason"])),
        ]),
        table(&challenges, &[
            ("Challenge", &|r| t(&r["challenge_id"])),
            ("Reason", &|r| t(&r["reason_code"])),
            ("Filed", &|r| t(&r["filed_at"])),
            ("Grace ends", &|r| t(&r["grace_ends_at"])),
            ("Outcome", &|r| t(&r["state"])),
        ]),
        table(&hosts, &[("IP", &host_link)]),
        table(b["artifacts"].as_array().map_or(&[][..], Vec::as_slice), &[
            ("Path", &|r| t(&r["path"])),
            ("SHA-256", &|r| t(&r["sha256"])),
        ]),
    );
    Ok(View {
        title: format!("Bundle {cid}"),
        json: json!({"bundle": b, "attestations": atts, "availability_checks": checks, "challenges": challenges, "hosts": hosts}),
        html,
    })
}

pub async fn challenges(st: &AppState, r: &Req) -> Result<View, AppError> {
    let p = Params::parse(r.query.as_deref(), &["state", "limit", "after"])?;
    let limit = p.limit()?;
    let (mut wh, mut args): (Vec<String>, Sql) = (vec![], vec![]);
    if let Some(state) = p.choice("state", &["in_grace", "resolved", "slashable"])? {
        push(&mut wh, &mut args, "c.state = {}::text", state);
    }
    if let Some(k) = cursor(&p, 2)? {
        let ts = chrono::DateTime::parse_from_rfc3339(k[0]).map_err(|_| AppError::bad("after: not a cursor from a 'next page' link"))?;
        if !k[1].starts_with("0x") || k[1].len() != 66 || !k[1][2..].chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(AppError::bad("after: not a cursor from a 'next page' link"));
        }
        args.push(Box::new(ts));
        args.push(Box::new(k[1].to_string()));
        wh.push(format!("(c.filed_at, c.challenge_id) < (${}::timestamptz, ${}::text)", args.len() - 1, args.len()));
    }
    args.push(Box::new(limit));
    let sql = format!(
        "SELECT c.challenge_id, c.cid, c.reason_code, c.challenger, c.subject, c.filed_at, c.grace_ends_at,
                c.resolved_at, c.state, c.subject_stake::text AS subject_stake, c.slash_amount::text AS slash_amount
           FROM nweb.v_challenges c {} ORDER BY c.filed_at DESC, c.challenge_id DESC LIMIT ${}::bigint",
        where_clause(&wh),
        args.len()
    );
    let c = st.0.pool.get().await?;
    let found = rows(&c, &sql, &args).await?;
    let next = next("/challenges", &p, &found, limit, |r| format!("{}|{}", s(&r["filed_at"]), s(&r["challenge_id"])));
    let html = format!(
        "<h1>Challenges</h1>{}{}",
        table(&found, &[
            ("Bundle", &|r| cid_link(&r["cid"])),
            ("Reason", &|r| t(&r["reason_code"])),
            ("Challenger", &|r| t(&r["challenger"])),
            ("Subject", &|r| t(&r["subject"])),
            ("Filed", &|r| t(&r["filed_at"])),
            ("Grace deadline", &|r| t(&r["grace_ends_at"])),
            ("Outcome", &|r| t(&r["state"])),
            ("Slash", &|r| t(&r["slash_amount"])),
        ]),
        next_link(next.as_deref())
    );
    Ok(View { title: "Challenges".into(), json: json!({"rows": found, "next": next}), html })
}

pub async fn submitters(st: &AppState, r: &Req) -> Result<View, AppError> {
    let p = Params::parse(r.query.as_deref(), &["limit", "after"])?;
    let limit = p.limit()?;
    let (mut wh, mut args): (Vec<String>, Sql) = (vec![], vec![]);
    if let Some(k) = cursor(&p, 1)? {
        let addr = crate::chain::config::parse_address("after", k[0]).map_err(|e| AppError::bad(e.to_string()))?;
        push(&mut wh, &mut args, "q.address > {}::text", format!("{addr:#x}").to_lowercase());
    }
    args.push(Box::new(limit));
    let sql = format!(
        "SELECT q.address, q.stake::text AS stake, q.reputation, q.rep_factor::text AS rep_factor, q.quota_units,
                q.used_units, q.remaining_units, q.may_submit
           FROM nweb.v_quota q {} ORDER BY q.address LIMIT ${}::bigint",
        where_clause(&wh),
        args.len()
    );
    let c = st.0.pool.get().await?;
    let found = rows(&c, &sql, &args).await?;
    let next = next("/submitters", &p, &found, limit, |r| s(&r["address"]).to_string());
    let html = format!(
        "<h1>Submitters</h1>{}{}",
        table(&found, &[
            ("Address", &|r| t(&r["address"])),
            ("Stake (wei)", &|r| t(&r["stake"])),
            ("Reputation", &|r| t(&r["reputation"])),
            ("Rep factor", &|r| t(&r["rep_factor"])),
            ("Quota used", &|r| format!("{} / {}", t(&r["used_units"]), t(&r["quota_units"]))),
            ("May submit", &|r| t(&r["may_submit"])),
        ]),
        next_link(next.as_deref())
    );
    Ok(View { title: "Submitters".into(), json: json!({"rows": found, "next": next}), html })
}

// ---------------------------------------------------------------- XRAY (per tenant)

/// A transaction whose tenant is selected for it alone: `xray.set_tenant(t, true)` raises
/// insufficient_privilege (403) unless xray.tenant_access grants it to the login role.
async fn tenant_tx<'a>(
    c: &'a mut deadpool_postgres::Object,
    p: &Params,
) -> Result<(deadpool_postgres::Transaction<'a>, uuid::Uuid), AppError> {
    let tenant = p
        .uuid("tenant")?
        .ok_or_else(|| AppError::bad("tenant: required; XRAY data is shown only for a selected tenant (?tenant=<uuid>)"))?;
    let tx = c.transaction().await?;
    tx.execute("SELECT xray.set_tenant($1::text::uuid, true)", &[&tenant.to_string()]).await?;
    Ok((tx, tenant))
}

fn tenant_nav(tenant: &uuid::Uuid) -> String {
    format!(
        "<p>Tenant <code>{tenant}</code>: {} {}</p>",
        a(&format!("/xray/exposures?tenant={tenant}"), "open exposures"),
        a(&format!("/xray/events?tenant={tenant}"), "event timeline")
    )
}

pub async fn exposures(st: &AppState, r: &Req) -> Result<View, AppError> {
    let p = Params::parse(r.query.as_deref(), &["tenant", "bucket", "severity", "limit", "after"])?;
    let limit = p.limit()?;
    let mut c = st.0.pool.get().await?;
    let (tx, tenant) = tenant_tx(&mut c, &p).await?;
    let targ: Sql = vec![Box::new(tenant.to_string())];
    // tenant_id is compared too, so a login that bypasses RLS (--allow-rls-bypass) still
    // sees only the tenant it asked for.
    let counts = rows(
        &tx,
        "SELECT risk_bucket, bucket_name, severity, count(*) AS open
           FROM xray.open_exposures WHERE tenant_id = $1::text::uuid
          GROUP BY risk_bucket, bucket_name, severity, severity_rank ORDER BY severity_rank DESC, risk_bucket",
        &targ,
    )
    .await?;
    let (mut wh, mut args): (Vec<String>, Sql) = (vec![], vec![]);
    push(&mut wh, &mut args, "x.tenant_id = {}::text::uuid", tenant.to_string());
    if let Some(b) = p.get("bucket") {
        if !(b.len() <= 8 && b.starts_with("RB") && b[2..].chars().all(|c| c.is_ascii_digit()) && b.len() > 2) {
            return Err(AppError::bad("bucket: a risk bucket such as RB1"));
        }
        push(&mut wh, &mut args, "x.risk_bucket = {}::text", b.to_string());
    }
    if let Some(sev) = p.choice("severity", &["info", "low", "medium", "high", "critical"])? {
        push(&mut wh, &mut args, "x.severity = {}::text", sev);
    }
    if let Some(k) = cursor(&p, 1)? {
        push(&mut wh, &mut args, "x.identity_key > {}::text", k[0].to_string());
    }
    args.push(Box::new(limit));
    let list = rows(
        &tx,
        &format!(
            "SELECT x.identity_key, x.risk_bucket, x.bucket_name, x.severity, x.asset_value, x.observed_host,
                    host(x.observed_ip) AS observed_ip, x.proto, x.port, x.detail, x.open_since, x.age_days, x.last_seen
               FROM xray.open_exposures x {} ORDER BY x.identity_key LIMIT ${}::bigint",
            where_clause(&wh),
            args.len()
        ),
        &args,
    )
    .await?;
    // Open exposures at the end of each day: NEW opens one (a reopen is a NEW too), FIXED closes one.
    let trend = rows(
        &tx,
        "SELECT d::date::text AS day, sum(delta) OVER (ORDER BY d)::int AS open
           FROM (SELECT date_trunc('day', e.observed_at) AS d,
                        sum(CASE e.event_type WHEN 'NEW' THEN 1 WHEN 'FIXED' THEN -1 ELSE 0 END) AS delta
                   FROM xray.exposure_events e WHERE e.tenant_id = $1::text::uuid
                  GROUP BY 1) per_day
          ORDER BY d DESC LIMIT 366",
        &targ,
    )
    .await?;
    tx.commit().await?;
    let mut trend = trend;
    trend.reverse();
    let points: Vec<(String, f64)> =
        trend.iter().map(|r| (s(&r["day"]).to_string(), r["open"].as_f64().unwrap_or(0.0))).collect();
    let next = next("/xray/exposures", &p, &list, limit, |r| s(&r["identity_key"]).to_string());
    let html = format!(
        "<h1>Open exposures</h1>{}<h2>Open exposures over time</h2>{}<h2>By bucket and severity</h2>{}<h2>Exposures</h2>{}{}",
        tenant_nav(&tenant),
        line_chart("Open exposures per day", &points),
        table(&counts, &[
            ("Bucket", &|r| a(&format!("/xray/exposures?tenant={tenant}&bucket={}", enc(s(&r["risk_bucket"]))), &t(&r["risk_bucket"]))),
            ("Name", &|r| t(&r["bucket_name"])),
            ("Severity", &|r| t(&r["severity"])),
            ("Open", &|r| t(&r["open"])),
        ]),
        table(&list, &[
            ("Bucket", &|r| t(&r["risk_bucket"])),
            ("Severity", &|r| t(&r["severity"])),
            ("Asset", &|r| t(&r["asset_value"])),
            ("Host", &|r| t(&r["observed_host"])),
            ("Port", &|r| format!("{}/{}", t(&r["port"]), t(&r["proto"]))),
            ("Open since", &|r| t(&r["open_since"])),
            ("Age (days)", &|r| t(&r["age_days"])),
            ("Detail", &|r| t(&r["detail"])),
        ]),
        next_link(next.as_deref())
    );
    Ok(View {
        title: "Open exposures".into(),
        json: json!({"tenant": tenant, "by_bucket": counts, "rows": list, "trend": trend, "next": next}),
        html,
    })
}

pub async fn events(st: &AppState, r: &Req) -> Result<View, AppError> {
    let p = Params::parse(r.query.as_deref(), &["tenant", "type", "limit", "after"])?;
    let limit = p.limit()?;
    let mut c = st.0.pool.get().await?;
    let (tx, tenant) = tenant_tx(&mut c, &p).await?;
    let (mut wh, mut args): (Vec<String>, Sql) = (vec![], vec![]);
    push(&mut wh, &mut args, "e.tenant_id = {}::text::uuid", tenant.to_string());
    if let Some(ty) = p.choice("type", &["NEW", "CHANGED", "FIXED"])? {
        push(&mut wh, &mut args, "e.event_type = {}::text", ty);
    }
    if let Some(k) = cursor(&p, 1)? {
        let id: i64 = k[0].parse().map_err(|_| AppError::bad("after: not a cursor from a 'next page' link"))?;
        push(&mut wh, &mut args, "e.event_id < {}::bigint", id);
    }
    args.push(Box::new(limit));
    let list = rows(
        &tx,
        &format!(
            "SELECT e.event_id, e.event_type, e.observed_at, e.risk_bucket, e.severity, e.asset_value, e.observed_host,
                    e.proto, e.port, e.detail, e.reopened, e.current_status, e.time_to_fix::text AS time_to_fix
               FROM xray.exposure_timeline e {} ORDER BY e.event_id DESC LIMIT ${}::bigint",
            where_clause(&wh),
            args.len()
        ),
        &args,
    )
    .await?;
    tx.commit().await?;
    let next = next("/xray/events", &p, &list, limit, |r| r["event_id"].to_string());
    let html = format!(
        "<h1>Event timeline</h1>{}{}{}",
        tenant_nav(&tenant),
        table(&list, &[
            ("Event", &|r| t(&r["event_id"])),
            ("Type", &|r| {
                if r["event_type"] == "FIXED" {
                    a(&format!("/xray/fix/{}?tenant={tenant}", r["event_id"]), "FIXED (proof)")
                } else {
                    t(&r["event_type"])
                }
            }),
            ("Observed", &|r| t(&r["observed_at"])),
            ("Bucket", &|r| t(&r["risk_bucket"])),
            ("Severity", &|r| t(&r["severity"])),
            ("Host", &|r| t(&r["observed_host"])),
            ("Port", &|r| format!("{}/{}", t(&r["port"]), t(&r["proto"]))),
            ("Now", &|r| t(&r["current_status"])),
            ("Time to fix", &|r| t(&r["time_to_fix"])),
        ]),
        next_link(next.as_deref())
    );
    Ok(View { title: "Event timeline".into(), json: json!({"tenant": tenant, "rows": list, "next": next}), html })
}

pub async fn fix(st: &AppState, r: &Req) -> Result<View, AppError> {
    let id: i64 = r
        .path
        .first()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &i64| n > 0)
        .ok_or_else(|| AppError::bad("event_id: not an event number"))?;
    let p = Params::parse(r.query.as_deref(), &["tenant"])?;
    let mut c = st.0.pool.get().await?;
    let (tx, tenant) = tenant_tx(&mut c, &p).await?;
    let checks = rows(
        &tx,
        "SELECT f.event_id, f.fixed_at, f.fixed_by_scan_id, f.risk_bucket, f.bucket_name, f.severity, f.observed_host,
                f.proto, f.port, f.fingerprint, f.proof_basis, f.last_open_detail, f.check_no, f.endpoint_id,
                host(f.endpoint_ip) AS endpoint_ip, f.check_result, f.checked_target, f.tools_run,
                f.open_tcp_ports_seen, f.port_state_seen, f.tls_versions_seen, f.dns_assessment_seen
           FROM xray.proof_of_fix f WHERE f.event_id = $1::bigint AND f.tenant_id = $2::text::uuid
          ORDER BY f.check_no NULLS FIRST LIMIT 100",
        &vec![Box::new(id) as Box<dyn ToSql + Sync + Send>, Box::new(tenant.to_string())],
    )
    .await?;
    tx.commit().await?;
    let Some(first) = checks.first() else {
        return Err(AppError::not_found(format!("no FIXED event {id} for tenant {tenant}")));
    };
    let html = format!(
        "<h1>Proof of fix: event {id}</h1>{}{}<h2>What the fixing scan checked</h2>{}",
        tenant_nav(&tenant),
        fields(first, &[
            ("Fixed at", "fixed_at"), ("Fixed by scan", "fixed_by_scan_id"), ("Bucket", "risk_bucket"),
            ("Name", "bucket_name"), ("Severity", "severity"), ("Host", "observed_host"), ("Port", "port"),
            ("Fingerprint", "fingerprint"), ("Proof basis", "proof_basis"), ("Last open detail", "last_open_detail"),
        ]),
        table(&checks, &[
            ("Check", &|r| t(&r["check_no"])),
            ("Endpoint", &|r| format!("{} {}", t(&r["endpoint_id"]), t(&r["endpoint_ip"]))),
            ("Result", &|r| t(&r["check_result"])),
            ("Target", &|r| t(&r["checked_target"])),
            ("Tools", &|r| t(&r["tools_run"])),
            ("Port state seen", &|r| t(&r["port_state_seen"])),
            ("Open ports seen", &|r| t(&r["open_tcp_ports_seen"])),
        ])
    );
    Ok(View { title: format!("Proof of fix {id}"), json: json!({"tenant": tenant, "checks": checks}), html })
}

// ---------------------------------------------------------------- screenshots

fn car_path(st: &AppState, cid: &str) -> Option<std::path::PathBuf> {
    st.0.car_dir.as_ref().map(|d| d.join(format!("{cid}.car")))
}

/// A screenshot's bytes from the bundle's CAR, served only when the CAR's blocks verify
/// against the CID and the file's SHA-256 equals the manifest's, so the UI never shows
/// an image the bundle did not commit to.
pub async fn screenshot(st: &AppState, cid: &str, path: &str) -> Result<(&'static str, Vec<u8>), AppError> {
    let cid = parse_cid(cid)?;
    if !path.starts_with("assets/screenshots/") || path.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(AppError::bad("path: not a screenshot path (assets/screenshots/{ip}/{ts}/...)"));
    }
    let c = st.0.pool.get().await?;
    let want = c
        .query_opt(
            "SELECT f ->> 'sha256' FROM nweb.bundles b CROSS JOIN LATERAL jsonb_array_elements(b.manifest -> 'artifacts') f
              WHERE b.cid = $1::text AND b.status = 'verified' AND f ->> 'path' = $2::text LIMIT 1",
            &[&cid, &path],
        )
        .await?
        .map(|r| r.get::<_, Option<String>>(0))
        .ok_or_else(|| AppError::not_found("no such screenshot in a verified bundle's manifest"))?
        .ok_or_else(|| AppError::not_found("the manifest lists no sha256 for it"))?;
    let file = car_path(st, &cid).ok_or_else(|| AppError::not_found("not available: no CAR directory is configured (--car-dir)"))?;
    let root: nweb::Cid = cid.parse().map_err(|_| AppError::bad("cid: not a CID"))?;
    let path_owned = path.to_string();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AppError> {
        let meta = std::fs::metadata(&file).map_err(|_| AppError::not_found("not available: this node has no CAR of the bundle"))?;
        if meta.len() > MAX_CAR_BYTES {
            return Err(AppError::not_found("not available: the bundle's CAR is larger than this server reads"));
        }
        let car = std::fs::read(&file).map_err(|_| AppError::not_found("not available: the CAR cannot be read"))?;
        let unpacked = nweb::car::unpack_car(&car, Some(&root), MAX_CAR_BYTES)
            .map_err(|e| AppError::not_found(format!("not available: the CAR does not verify ({e})")))?;
        unpacked
            .files
            .into_iter()
            .find(|(p, _)| *p == path_owned)
            .map(|(_, b)| b)
            .ok_or_else(|| AppError::not_found("not available: the CAR lacks this file"))
    })
    .await
    .map_err(|_| AppError::not_found("not available"))??;
    if hex::encode(Sha256::digest(&bytes)) != want.to_ascii_lowercase() {
        return Err(AppError::not_found("not available: the file's SHA-256 differs from the manifest's"));
    }
    let mime = match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    };
    Ok((mime, bytes))
}
