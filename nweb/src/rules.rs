//! The nweb MVP rules (docs/nweb.md §2), as pure
//! functions so the database, the loader and the tests share one definition.
//!
//! Money is exact: stakes are non-negative decimals in GST, held as a big integer
//! mantissa and a decimal scale, so a slash of 10 % split 50/50 never loses or invents
//! a fraction, and the quota's square root is floored exactly even when the true value
//! is an integer (where a float might land a hair below it).
//!
//! Reputation is a soft score, so it uses floating point; what it feeds into the quota
//! (`repFactor`) is floored to six decimals first, so the quota stays reproducible.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use num_bigint::BigUint;

/// Challenge grace period: 72 h.
pub const GRACE_SECONDS: i64 = 72 * 3600;
/// Minimum stake to submit, in GST.
pub const MIN_STAKE_GST: u32 = 100;
/// Slash: 10 % of the stake, of which 50 % goes to the challenger and the rest is burned.
pub const SLASH_PERCENT: u32 = 10;
pub const BOUNTY_PERCENT: u32 = 50;
/// Quota units are spent per rolling window. docs/nweb.md §7 leaves the period open; a day
/// is our choice (docs/design.md D30).
pub const QUOTA_WINDOW_SECONDS: i64 = 24 * 3600;
/// Reputation halves every 30 days after a submission's grace ended.
pub const REP_HALF_LIFE_SECONDS: f64 = 30.0 * 86_400.0;
/// `repFactor = rep / (rep + REP_HALF_SATURATION)`: 10 points of reputation give half
/// the maximum bonus, and the bonus never reaches +100 %.
pub const REP_HALF_SATURATION: f64 = 10.0;
/// Decimals kept in `repFactor`.
pub const REP_FACTOR_SCALE: u32 = 6;

/// A non-negative exact decimal: `mantissa / 10^scale`.
#[derive(Debug, Clone)]
pub struct Decimal {
    mantissa: BigUint,
    scale: u32,
}

/// Why a text is not a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a non-negative decimal number")]
pub struct DecimalError(pub String);

impl Decimal {
    pub fn from_u64(n: u64) -> Self {
        Decimal {
            mantissa: BigUint::from(n),
            scale: 0,
        }
    }

    fn pow10(n: u32) -> BigUint {
        BigUint::from(10u32).pow(n)
    }

    /// Both mantissas at the larger scale.
    fn aligned(&self, other: &Decimal) -> (BigUint, BigUint, u32) {
        let scale = self.scale.max(other.scale);
        (
            &self.mantissa * Self::pow10(scale - self.scale),
            &other.mantissa * Self::pow10(scale - other.scale),
            scale,
        )
    }

    /// `self * num / 10^den_exp`, exact (the scale grows instead of rounding).
    fn times_fraction(&self, num: u32, den_exp: u32) -> Decimal {
        Decimal {
            mantissa: &self.mantissa * BigUint::from(num),
            scale: self.scale + den_exp,
        }
        .normalized()
    }

    /// `self - other`; `None` if that would be negative.
    pub fn checked_sub(&self, other: &Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other);
        (a >= b).then(|| {
            Decimal {
                mantissa: a - b,
                scale,
            }
            .normalized()
        })
    }

    /// The same value without trailing zeros after the point.
    pub fn normalized(mut self) -> Decimal {
        let ten = BigUint::from(10u32);
        while self.scale > 0 && (&self.mantissa % &ten) == BigUint::ZERO {
            self.mantissa /= &ten;
            self.scale -= 1;
        }
        self
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == BigUint::ZERO
    }

    /// Largest decimal with `scale` places not above `x` (x >= 0, finite).
    pub fn floor_f64(x: f64, scale: u32) -> Option<Decimal> {
        if !x.is_finite() || x < 0.0 {
            return None;
        }
        let scaled = (x * 10f64.powi(scale as i32)).floor();
        // Above 2^53 the float has no fractional digits left to floor.
        (scaled < 9.0e15).then(|| {
            Decimal {
                mantissa: BigUint::from(scaled as u64),
                scale,
            }
            .normalized()
        })
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Plain decimal notation as PostgreSQL writes `numeric`: digits, optionally a point
    /// and more digits. No sign (stakes cannot be negative), no exponent, no NaN.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DecimalError(s.to_owned());
        let t = s.trim();
        let t = t.strip_prefix('+').unwrap_or(t);
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let digits = format!("{int}{frac}");
        let mantissa = if digits.is_empty() {
            BigUint::ZERO
        } else {
            digits.parse().map_err(|_| err())?
        };
        let scale = u32::try_from(frac.len()).map_err(|_| err())?;
        Ok(Decimal { mantissa, scale }.normalized())
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b, _) = self.aligned(other);
        a.cmp(&b)
    }
}

/// `quotaUnits = floor(sqrt(stake) * (1 + repFactor))`, and 0 below the minimum stake
/// of 100 GST (an address that may not submit has no quota).
///
/// Exact: with stake = s / 10^k (k made even) and 1 + repFactor = a / 10^m,
/// sqrt(stake) * (1 + repFactor) = sqrt(s * a^2) / 10^(k/2 + m), and
/// floor(sqrt(x) / d) = floor(isqrt(x) / d) for a positive integer d.
pub fn quota_units(stake: &Decimal, rep_factor: &Decimal) -> u64 {
    if *stake < Decimal::from_u64(u64::from(MIN_STAKE_GST)) {
        return 0;
    }
    let (mut s, mut k) = (stake.mantissa.clone(), stake.scale);
    if k % 2 == 1 {
        s *= 10u32;
        k += 1;
    }
    let m = rep_factor.scale;
    let a = Decimal::pow10(m) + &rep_factor.mantissa;
    let root = (s * &a * &a).sqrt();
    let q = root / Decimal::pow10(k / 2 + m);
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// The kinds of submission docs/nweb.md §2 prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubmissionKind {
    MasscanQuick,
    NmapTop1k,
    NmapFull,
    DiffEnrich,
}

impl SubmissionKind {
    /// Quota units one submission of this kind costs.
    pub fn cost(self) -> u32 {
        match self {
            SubmissionKind::MasscanQuick => 1,
            SubmissionKind::NmapTop1k => 2,
            SubmissionKind::NmapFull => 5,
            SubmissionKind::DiffEnrich => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionKind::MasscanQuick => "masscan-quick",
            SubmissionKind::NmapTop1k => "nmap-top1k",
            SubmissionKind::NmapFull => "nmap-full",
            SubmissionKind::DiffEnrich => "diff/enrich",
        }
    }

    /// The kind of a bundle: the manifest's explicit `profile` if it has one, else from
    /// `datasetType` and the scan options. An nmap scan counts as full when its port
    /// list covers all 65535 ports (`-p-`, `-p 1-65535`) or asks for more than the top
    /// 1000; otherwise it is a top-1000 scan. `None` for an unknown dataset type.
    pub fn classify(dataset_type: &str, options: Option<&str>) -> Option<SubmissionKind> {
        match dataset_type {
            "masscan" => Some(SubmissionKind::MasscanQuick),
            "diff" | "enrich" => Some(SubmissionKind::DiffEnrich),
            "nmap" => Some(if options.is_some_and(nmap_scans_all_ports) {
                SubmissionKind::NmapFull
            } else {
                SubmissionKind::NmapTop1k
            }),
            _ => None,
        }
    }
}

fn nmap_scans_all_ports(options: &str) -> bool {
    let tokens: Vec<&str> = options
        .split([' ', ','])
        .filter(|t| !t.is_empty())
        .collect();
    tokens.iter().enumerate().any(|(i, t)| {
        let value = |flag: &str| -> Option<&str> {
            if *t == flag {
                tokens.get(i + 1).copied()
            } else {
                t.strip_prefix(flag).map(|v| v.trim_start_matches('='))
            }
        };
        if *t == "-p-"
            || matches!(
                value("-p"),
                Some("-" | "1-65535" | "0-65535" | "T:1-65535" | "T:0-65535")
            )
        {
            return true;
        }
        value("--top-ports")
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|n| n > 1000)
    })
}

impl FromStr for SubmissionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "masscan-quick" => Ok(SubmissionKind::MasscanQuick),
            "nmap-top1k" => Ok(SubmissionKind::NmapTop1k),
            "nmap-full" => Ok(SubmissionKind::NmapFull),
            "diff/enrich" | "diff" | "enrich" => Ok(SubmissionKind::DiffEnrich),
            other => Err(format!(
                "unknown submission kind {other:?} (expected masscan-quick, nmap-top1k, nmap-full, diff or enrich)"
            )),
        }
    }
}

impl fmt::Display for SubmissionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a successful challenge takes from the challenged stake, exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashSplit {
    /// 10 % of the stake.
    pub slashed: Decimal,
    /// 50 % of the slashed amount, paid to the challenger.
    pub to_challenger: Decimal,
    /// The rest of the slashed amount. Always `slashed - to_challenger`, so the two
    /// parts add up to the slash whatever the stake's precision.
    pub burned: Decimal,
}

pub fn slash_split(stake: &Decimal) -> SlashSplit {
    let slashed = stake.times_fraction(SLASH_PERCENT, 2);
    let to_challenger = slashed.times_fraction(BOUNTY_PERCENT, 2);
    let burned = slashed
        .checked_sub(&to_challenger)
        .expect("half of a non-negative amount is not more than the amount");
    SlashSplit {
        slashed,
        to_challenger,
        burned,
    }
}

/// End of a challenge's grace period, in Unix microseconds.
pub fn grace_ends_at(filed_at_micros: i64) -> i64 {
    filed_at_micros.saturating_add(GRACE_SECONDS * 1_000_000)
}

/// Where a challenge stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    /// The grace period is running and the submitter has not resolved it yet.
    InGrace,
    /// The submitter attested a valid Resolution within the grace period.
    Resolved,
    /// Grace is over without a valid Resolution: the stake may be slashed.
    Slashable,
}

impl ChallengeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeState::InGrace => "in_grace",
            ChallengeState::Resolved => "resolved",
            ChallengeState::Slashable => "slashable",
        }
    }
}

/// The grace period is the closed interval [filed, grace_ends_at]: a Resolution at the
/// very last microsecond counts, and slashing starts strictly after it ("after grace,
/// if no valid Resolution, SLASH"). A Resolution after the grace period is not valid.
/// A Resolution later than `as_of` has not happened yet as far as `as_of` is concerned.
/// All times are Unix microseconds.
pub fn challenge_state(
    grace_ends_at: i64,
    first_resolution_at: Option<i64>,
    as_of: i64,
) -> ChallengeState {
    match first_resolution_at {
        Some(r) if r <= grace_ends_at && r <= as_of => ChallengeState::Resolved,
        _ if as_of <= grace_ends_at => ChallengeState::InGrace,
        _ => ChallengeState::Slashable,
    }
}

/// The share a vantage counts with when nothing but the submitter's word backs it: the
/// attested and the manifest's `vantage` are both fields the submitter fills in, so a
/// made-up label per submission would otherwise be "rare" every time and double its
/// points. Such a vantage counts as common (1x) until a vantage can be proven
/// (docs/design.md D41).
pub const UNVERIFIABLE_VANTAGE_SHARE: f64 = 1.0;

/// The one spelling of a CID off chain, the same the contracts accept: CIDv1 in
/// lowercase base32 (the `cid` crate's text of a v1 CID). A CIDv0 (`Qm…`) is the same
/// content as the dag-pb CIDv1 of its hash, so it is converted; any other multibase is
/// re-encoded. Err: the text is not a CID.
pub fn canonical_cid(text: &str) -> Result<String, String> {
    let c: cid::Cid = text.trim().parse().map_err(|e| format!("not a CID ({e})"))?;
    let v1 = match c.version() {
        cid::Version::V0 => cid::Cid::new_v1(c.codec(), *c.hash()),
        cid::Version::V1 => c,
    };
    Ok(v1.to_string())
}

/// Why an attested CID text is not acceptable as it stands, or None when it is the
/// canonical spelling. A variant spelling is refused, not canonicalised: on chain the
/// CID is the hash of the raw text, so the slasher looks up exactly that text, and a
/// variant of someone else's CID must not become a submission of it.
pub fn cid_spelling_problem(text: &str) -> Option<String> {
    match canonical_cid(text) {
        Err(e) => Some(e),
        Ok(c) if c == text => None,
        Ok(c) => Some(format!("not the canonical spelling (CIDv1 base32 lower-case): {c}")),
    }
}

/// Reputation one submission contributes.
///
/// `points = cost_units * rarity * 2^(-age / 30 days)` where
/// - `cost_units` weights by dataset complexity (the quota cost: masscan 1, top-1000
///   nmap 2, full nmap 5, diff/enrich 1);
/// - `rarity = 2 / (1 + share)`, with `share` in (0, 1] the fraction of counted
///   submissions made from the same vantage: a vantage nobody else uses is worth
///   nearly 2x, a vantage everyone uses 1x;
/// - `age` is the time since the submission's grace period ended (it earns nothing
///   before that), so the score decays with a 30-day half-life toward recent work.
pub fn reputation_points(cost_units: u32, vantage_share: f64, age_seconds: f64) -> f64 {
    if age_seconds < 0.0 || !age_seconds.is_finite() {
        return 0.0;
    }
    let share = if vantage_share.is_finite() {
        vantage_share.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let rarity = 2.0 / (1.0 + share);
    f64::from(cost_units) * rarity * 0.5f64.powf(age_seconds / REP_HALF_LIFE_SECONDS)
}

/// `repFactor = floor6(rep / (rep + 10))`, in [0, 1).
pub fn rep_factor(reputation: f64) -> Decimal {
    if reputation.is_nan() || reputation <= 0.0 || reputation.is_infinite() {
        return Decimal::from_u64(0);
    }
    let x = reputation / (reputation + REP_HALF_SATURATION);
    Decimal::floor_f64(x, REP_FACTOR_SCALE).unwrap_or_else(|| Decimal::from_u64(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn decimals_parse_print_and_compare() {
        assert_eq!(d("100").to_string(), "100");
        assert_eq!(d("100.500").to_string(), "100.5");
        assert_eq!(
            d("0.000000000000000001").to_string(),
            "0.000000000000000001"
        );
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("5.").to_string(), "5");
        assert_eq!(d("00.10"), d("0.1"));
        assert!(d("99.999999999999999999") < d("100"));
        for bad in ["", ".", "-1", "1e5", "NaN", "Infinity", "1.2.3", "1,5", " "] {
            assert!(bad.parse::<Decimal>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quota_below_minimum_stake_is_zero() {
        assert_eq!(quota_units(&d("0"), &d("0")), 0);
        assert_eq!(quota_units(&d("0"), &d("0.999999")), 0);
        assert_eq!(quota_units(&d("99.999999999999999999"), &d("0.5")), 0);
    }

    #[test]
    fn quota_at_and_above_minimum_stake() {
        assert_eq!(quota_units(&d("100"), &d("0")), 10);
        assert_eq!(quota_units(&d("100"), &d("0.5")), 15);
        assert_eq!(quota_units(&d("120"), &d("0")), 10, "sqrt(120) = 10.95");
        assert_eq!(quota_units(&d("121"), &d("0")), 11);
        assert_eq!(quota_units(&d("10000"), &d("0.999999")), 199);
        assert_eq!(quota_units(&d("1000000000000"), &d("0")), 1_000_000);
    }

    /// Where the product is exactly an integer, floor must not fall one short, and one
    /// unit of the last decimal below must.
    #[test]
    fn quota_is_exact_at_integer_boundaries() {
        // sqrt(144) * 1.25 = 15 exactly.
        assert_eq!(quota_units(&d("144"), &d("0.25")), 15);
        assert_eq!(quota_units(&d("144"), &d("0.249999")), 14);
        assert_eq!(quota_units(&d("143.999999999999999999"), &d("0.25")), 14);
        // sqrt(100.0001) is irrational; the float product is fine, the exact one too.
        assert_eq!(quota_units(&d("100.0001"), &d("0")), 10);
        // sqrt(1.21e2) with an odd scale: 121.0 has scale 0 after normalising, 12.1 is
        // below the minimum; 1210.0 = scale 0; 102.01 (scale 2) has root 10.1.
        assert_eq!(
            quota_units(&d("102.01"), &d("0.980198")),
            19,
            "10.1 * 1.980198 = 19.99999"
        );
        assert_eq!(
            quota_units(&d("102.01"), &d("0.98019802")),
            20,
            "10.1 * 1.98019802 = 20.000000002"
        );
    }

    #[test]
    fn quota_agrees_with_floating_point_away_from_boundaries() {
        for stake in [100u64, 150, 999, 12_345, 1_000_001] {
            for rep in ["0", "0.1", "0.333333", "0.75"] {
                let f =
                    ((stake as f64).sqrt() * (1.0 + rep.parse::<f64>().unwrap())).floor() as u64;
                assert_eq!(
                    quota_units(&Decimal::from_u64(stake), &d(rep)),
                    f,
                    "{stake} {rep}"
                );
            }
        }
    }

    #[test]
    fn costs_follow_the_spec() {
        let k = |s: &str| s.parse::<SubmissionKind>().unwrap().cost();
        assert_eq!(k("masscan-quick"), 1);
        assert_eq!(k("nmap-top1k"), 2);
        assert_eq!(k("nmap-full"), 5);
        assert_eq!(k("diff"), 1);
        assert_eq!(k("enrich"), 1);
        assert_eq!(k("diff/enrich"), 1);
        assert!("nmap".parse::<SubmissionKind>().is_err());
    }

    #[test]
    fn classification_of_bundles() {
        use SubmissionKind::*;
        let c = SubmissionKind::classify;
        assert_eq!(c("masscan", None), Some(MasscanQuick));
        assert_eq!(c("nmap", None), Some(NmapTop1k));
        assert_eq!(c("nmap", Some("-sV -Pn -T4 -p 22,443")), Some(NmapTop1k));
        assert_eq!(c("nmap", Some("-sS -p -")), Some(NmapFull));
        assert_eq!(c("nmap", Some("-sS -p-")), Some(NmapFull));
        assert_eq!(c("nmap", Some("-sS -p1-65535")), Some(NmapFull));
        assert_eq!(c("nmap", Some("-sS -p 1-65535 -T4")), Some(NmapFull));
        assert_eq!(c("nmap", Some("--top-ports 1000")), Some(NmapTop1k));
        assert_eq!(c("nmap", Some("--top-ports=5000")), Some(NmapFull));
        assert_eq!(c("nmap", Some("-p 1-1024")), Some(NmapTop1k));
        assert_eq!(c("diff", None), Some(DiffEnrich));
        assert_eq!(c("zmap", None), None);
    }

    #[test]
    fn slash_is_ten_percent_split_evenly_and_exactly() {
        let s = slash_split(&d("1000"));
        assert_eq!(
            (
                s.slashed.to_string(),
                s.to_challenger.to_string(),
                s.burned.to_string()
            ),
            ("100".into(), "50".into(), "50".into())
        );
        // Odd amounts at the last wei: nothing is rounded away.
        let s = slash_split(&d("100.000000000000000001"));
        assert_eq!(s.slashed.to_string(), "10.0000000000000000001");
        assert_eq!(s.to_challenger.to_string(), "5.00000000000000000005");
        assert_eq!(s.burned.to_string(), "5.00000000000000000005");
        let s = slash_split(&d("0.3"));
        assert_eq!(s.slashed, d("0.03"));
        assert_eq!(s.to_challenger, d("0.015"));
        assert_eq!(s.burned, d("0.015"));
        let zero = slash_split(&d("0"));
        assert!(zero.slashed.is_zero() && zero.to_challenger.is_zero() && zero.burned.is_zero());
        // The parts always add up.
        for stake in ["123.456789", "7", "0.000001", "99999999999999999999.99"] {
            let s = slash_split(&d(stake));
            let (a, b, _) = s.to_challenger.aligned(&s.burned);
            let sum = Decimal {
                mantissa: a + b,
                scale: s.to_challenger.scale.max(s.burned.scale),
            };
            assert_eq!(sum, s.slashed, "{stake}");
        }
    }

    #[test]
    fn grace_edges() {
        let filed = 1_700_000_000_000_000i64;
        let end = grace_ends_at(filed);
        assert_eq!(end - filed, 72 * 3600 * 1_000_000);
        use ChallengeState::*;
        assert_eq!(challenge_state(end, None, filed), InGrace);
        assert_eq!(
            challenge_state(end, None, end),
            InGrace,
            "exactly at the end: still grace"
        );
        assert_eq!(challenge_state(end, None, end + 1), Slashable);
        assert_eq!(
            challenge_state(end, Some(end), end + 1),
            Resolved,
            "resolved at the last moment"
        );
        assert_eq!(
            challenge_state(end, Some(end + 1), end + 10),
            Slashable,
            "resolution after grace"
        );
        assert_eq!(
            challenge_state(end, Some(filed + 5), filed + 1),
            InGrace,
            "not yet resolved at as_of"
        );
        assert_eq!(challenge_state(end, Some(filed + 5), filed + 5), Resolved);
    }

    #[test]
    fn one_cid_spelling() {
        let v1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
        let v0 = "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB";
        assert_eq!(cid_spelling_problem(v1), None);
        let from_v0 = canonical_cid(v0).unwrap();
        let parsed: cid::Cid = from_v0.parse().unwrap();
        assert_eq!(parsed.hash(), v0.parse::<cid::Cid>().unwrap().hash(), "same content");
        assert_eq!(cid_spelling_problem(&from_v0), None);
        assert!(canonical_cid(v0).unwrap().starts_with("bafy"));
        let upper = v1.to_uppercase();
        assert_eq!(canonical_cid(&upper).unwrap(), v1, "multibase B (base32 upper) is the same CID");
        assert!(cid_spelling_problem(&upper).unwrap().contains(v1));
        assert!(cid_spelling_problem(v0).unwrap().starts_with("not the canonical spelling"));
        assert!(cid_spelling_problem(&format!(" {v1}")).is_some(), "whitespace is a variant");
        // The cid crate reads a path as the CID in it: still a variant, still refused.
        assert!(cid_spelling_problem(&format!("/ipfs/{v1}")).unwrap().starts_with("not the canonical spelling"));
        assert!(cid_spelling_problem("").unwrap().starts_with("not a CID"));
    }

    #[test]
    fn reputation_weights_and_decay() {
        let month = REP_HALF_LIFE_SECONDS;
        assert_eq!(reputation_points(2, 1.0, 0.0), 2.0);
        assert_eq!(reputation_points(5, 1.0, 0.0), 5.0);
        assert!(
            (reputation_points(2, 0.0, 0.0) - 4.0).abs() < 1e-12,
            "a unique vantage doubles"
        );
        assert!((reputation_points(2, 1.0 / 3.0, 0.0) - 3.0).abs() < 1e-12);
        assert!(
            (reputation_points(2, 1.0, month) - 1.0).abs() < 1e-12,
            "half after 30 days"
        );
        assert!((reputation_points(2, 1.0, 2.0 * month) - 0.5).abs() < 1e-12);
        assert_eq!(reputation_points(2, 1.0, -1.0), 0.0, "before grace ends");
        assert_eq!(reputation_points(2, f64::NAN, 0.0), 2.0);
    }

    #[test]
    fn rep_factor_is_bounded_and_floored() {
        assert_eq!(rep_factor(0.0), d("0"));
        assert_eq!(rep_factor(-3.0), d("0"));
        assert_eq!(rep_factor(f64::NAN), d("0"));
        assert_eq!(rep_factor(10.0), d("0.5"));
        assert_eq!(rep_factor(5.0), d("0.333333"), "1/3 floored, not rounded");
        assert_eq!(rep_factor(20.0), d("0.666666"));
        assert!(rep_factor(1e12) < d("1"));
        assert_eq!(quota_units(&d("100"), &rep_factor(10.0)), 15);
    }
}
