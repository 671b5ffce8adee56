//! Transactions of the slasher: an AvailabilityCheck attestation and a Challenge, signed
//! with a key from alloy's encrypted JSON keystore (eth-keystore, scrypt + AES-128-CTR).
//!
//! The password comes from `slasher.password_file` or `$XRAY_KEYSTORE_PASSWORD`. It is
//! never logged or put into an error message, and its bytes are zeroed after use.

use std::path::Path;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, FixedBytes, B256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest};
use alloy::transports::{RpcError, TransportErrorKind};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use alloy::transports::http::Http;
use anyhow::{anyhow, bail, Context, Result};

use super::abi::{self, IAttestor, ISlashRouter, ISubmissionRouter, IERC20};
use super::config::{redact, ChainConfig, SlasherConfig};
use super::rpc::{scrub_url, with_sources};

pub const PASSWORD_ENV: &str = "XRAY_KEYSTORE_PASSWORD";

/// Opens the keystore. Errors name the file, never the password.
pub fn open_keystore(cfg: &SlasherConfig) -> Result<Option<PrivateKeySigner>> {
    let Some(path) = &cfg.keystore else {
        return Ok(None);
    };
    let mut password: Vec<u8> = match &cfg.password_file {
        Some(f) => {
            let mut b =
                std::fs::read(f).with_context(|| format!("cannot read slasher.password_file {}", f.display()))?;
            while matches!(b.last(), Some(b'\n' | b'\r')) {
                b.pop();
            }
            b
        }
        None => match std::env::var_os(PASSWORD_ENV) {
            Some(v) => v.into_encoded_bytes(),
            None => bail!(
                "slasher.keystore {} needs a password: set slasher.password_file or ${PASSWORD_ENV}",
                path.display()
            ),
        },
    };
    let opened = PrivateKeySigner::decrypt_keystore(path, &password);
    password.fill(0);
    let signer = opened.map_err(|e| anyhow!("cannot open the keystore {}: {e}", path_text(path)))?;
    tracing::info!(address = %abi::addr(&signer.address()), keystore = %path_text(path), "keystore opened");
    Ok(Some(signer))
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

/// The slasher's view of the contracts, read and write.
pub struct Writer {
    provider: alloy::providers::DynProvider,
    pub from: Address,
    attestor: Address,
    slash_router: Address,
    url: url::Url,
    shown: String,
}

/// The gas limit sent for an estimate. The estimate holds for the state it was
/// made on; the block the transaction lands in may differ (a later timestamp,
/// a storage slot written for the first time), and running out of gas would
/// revert the action and still cost the fee.
pub fn padded_gas(estimate: u64) -> u64 {
    estimate.saturating_add(estimate / 4).saturating_add(20_000)
}

impl Writer {
    pub fn new(chain: &ChainConfig, signer: PrivateKeySigner) -> Result<Writer> {
        let slash_router = chain
            .slash_router
            .ok_or_else(|| anyhow!("challenges need chain.slash_router in the configuration"))?;
        let client = reqwest::Client::builder()
            .timeout(chain.request_timeout)
            .build()
            .map_err(|e| anyhow!("cannot build the HTTP client: {}", e.without_url()))?;
        let http = Http::with_client(client, chain.rpc_url.clone());
        let local = http.guess_local();
        let from = signer.address();
        // Nonces are asked for each time: a refused transaction must not skip one.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_client(RpcClient::new(http, local))
            .erased();
        Ok(Writer {
            provider,
            from,
            attestor: chain.attestor,
            slash_router,
            url: chain.rpc_url.clone(),
            shown: redact(&chain.rpc_url),
        })
    }

    fn err(&self, what: &str, e: impl std::error::Error) -> anyhow::Error {
        anyhow!(
            "{what}: {}",
            scrub_url(&with_sources(&e).replace('\n', " "), &self.url, &self.shown)
        )
    }

    /// An RPC error with the contract's custom error decoded (`InGrace { graceEndsAt: … }`)
    /// when the node returned revert data: the selector alone tells an operator nothing.
    fn rpc_err(&self, what: &str, e: RpcError<TransportErrorKind>) -> anyhow::Error {
        match e.as_error_resp().and_then(|p| p.as_revert_data()).and_then(|d| abi::revert_text(&d)) {
            Some(decoded) => anyhow!("{what} reverted: {decoded}"),
            None => self.err(what, e),
        }
    }

    pub async fn view<C: SolCall>(&self, to: Address, call: C) -> Result<C::Return> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_input(Bytes::from(call.abi_encode()));
        let out = self.provider.call(tx).await.map_err(|e| self.rpc_err(C::SIGNATURE, e))?;
        C::abi_decode_returns(&out).map_err(|e| self.err(C::SIGNATURE, e))
    }

    fn request<C: SolCall>(&self, to: Address, call: &C) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(self.from)
            .with_to(to)
            .with_input(Bytes::from(call.abi_encode()))
    }

    /// The gas the call would take now, from this address: the node runs it, so a call
    /// the contracts refuse fails here with the decoded reason and nothing is sent.
    pub async fn estimate<C: SolCall>(&self, to: Address, call: &C) -> Result<u64> {
        self.provider
            .estimate_gas(self.request(to, call))
            .await
            .map_err(|e| self.rpc_err(C::SIGNATURE, e))
    }

    /// Sends and waits for the receipt; a revert is an error naming the call.
    pub async fn send_call<C: SolCall>(&self, to: Address, call: C) -> Result<TransactionReceipt> {
        let gas = self.estimate(to, &call).await?;
        let pending = self
            .provider
            .send_transaction(self.request(to, &call).with_gas_limit(padded_gas(gas)))
            .await
            .map_err(|e| self.rpc_err(C::SIGNATURE, e))?;
        let receipt = pending.get_receipt().await.map_err(|e| self.err(C::SIGNATURE, e))?;
        if !receipt.status() {
            bail!("{}: transaction {} reverted", C::SIGNATURE, receipt.transaction_hash);
        }
        Ok(receipt)
    }

    async fn send<C: SolCall>(&self, to: Address, call: C) -> Result<B256> {
        Ok(self.send_call(to, call).await?.transaction_hash)
    }

    pub fn slash_router(&self) -> Address {
        self.slash_router
    }

    /// The SubmissionRouter the SlashRouter judges submissions by: submitting anywhere
    /// else would make a bundle the challenges cannot see.
    pub async fn submission_router(&self) -> Result<Address> {
        self.view(self.slash_router, ISlashRouter::submissionsCall {}).await
    }

    /// The timestamp of the latest block, the clock grace is measured by (not ours).
    pub async fn chain_time(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| self.rpc_err("eth_getBlockByNumber", e))?
            .ok_or_else(|| anyhow!("eth_getBlockByNumber: the node has no latest block"))?;
        Ok(block.header.timestamp)
    }

    pub async fn block_number(&self) -> Result<u64> {
        self.provider
            .get_block_number()
            .await
            .map_err(|e| self.rpc_err("eth_blockNumber", e))
    }

    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>> {
        self.provider
            .get_logs(filter)
            .await
            .map_err(|e| self.rpc_err("eth_getLogs", e))
    }

    /// The uid and submitter of the first ScanSubmission of a CID, if any.
    pub async fn first_submission(&self, cid: &str) -> Result<Option<(B256, Address)>> {
        let router = self.submission_router().await?;
        let first = self
            .view(router, ISubmissionRouter::firstSubmissionCall { cid: cid.to_string() })
            .await?;
        Ok((first.submitter != Address::ZERO).then_some((first.uid, first.submitter)))
    }

    /// The open challenge of a CID, if any.
    pub async fn open_challenge(&self, cid: &str) -> Result<Option<B256>> {
        let id = self
            .view(
                self.slash_router,
                ISlashRouter::openChallengeOfCall { cid: cid.to_string() },
            )
            .await?;
        Ok((id != B256::ZERO).then_some(id))
    }

    /// Whether the CID was submitted through the SubmissionRouter the SlashRouter uses.
    pub async fn submitted(&self, cid: &str) -> Result<bool> {
        Ok(self.first_submission(cid).await?.is_some())
    }

    pub async fn attest_unavailable(&self, check: IAttestor::AvailabilityCheck) -> Result<B256> {
        self.send(self.attestor, IAttestor::attestAvailabilityCall { check })
            .await
    }

    /// Files a Challenge, paying its bond: the SlashRouter takes `challengeBond` GST
    /// with transferFrom, so the allowance is raised to the bond first when short
    /// (exactly the bond, never an open-ended approval). The CID is sent in its
    /// canonical spelling, the only one the contracts accept.
    pub async fn challenge(&self, job_id: B256, cid: &str, reason: &str, evidence_cid: &str) -> Result<B256> {
        let cid = canonical_cid(cid)?;
        let bond = self.view(self.slash_router, ISlashRouter::challengeBondCall {}).await?;
        if !bond.is_zero() {
            let token: Address = self.view(self.slash_router, ISlashRouter::gstCall {}).await?;
            let allowed = self
                .view(token, IERC20::allowanceCall { owner: self.from, spender: self.slash_router })
                .await?;
            if allowed < bond {
                let balance = self.view(token, IERC20::balanceOfCall { who: self.from }).await?;
                if balance < bond {
                    bail!(
                        "the challenge bond is {bond} wei of GST but {} holds {balance}",
                        abi::addr(&self.from)
                    );
                }
                self.send(token, IERC20::approveCall { spender: self.slash_router, amount: bond })
                    .await?;
            }
        }
        self.send(
            self.slash_router,
            ISlashRouter::challengeCall {
                jobId: job_id,
                cid,
                reasonCode: abi::reason_code(reason),
                evidenceCid: evidence_cid.to_string(),
            },
        )
        .await
    }
}

/// The one spelling of a CID the contracts accept (contracts/src/CanonicalCid.sol): a
/// CIDv1 in base32 lower case, as the `cid` crate prints it. A CIDv0 is refused rather
/// than converted, since its v1 form is a different string the submitter never attested.
pub fn canonical_cid(text: &str) -> Result<String> {
    let cid: nweb::Cid = text
        .trim()
        .parse()
        .map_err(|e| anyhow!("{text:?} is not a CID: {e}"))?;
    // The cid crate prints a CIDv0 in base58btc ("Qm..."), a CIDv1 in base32 ("b...").
    let shown = cid.to_string();
    if !shown.starts_with('b') {
        bail!("{text:?} is a CIDv0; the contracts take only CIDv1 in base32");
    }
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::canonical_cid;

    #[test]
    fn cids_are_sent_in_their_canonical_spelling() {
        let c = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
        assert_eq!(canonical_cid(c).unwrap(), c);
        assert_eq!(canonical_cid(&c.to_uppercase()).unwrap(), c);
        assert_eq!(canonical_cid(&format!(" {c}\n")).unwrap(), c);
        assert!(canonical_cid("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n")
            .unwrap_err()
            .to_string()
            .contains("CIDv0"));
        assert!(canonical_cid("/ipfs/x").is_err());
    }
}

/// bytes32 from `0x` + 64 hex digits (a jobId from the database); zero otherwise.
pub fn b256_or_zero(s: Option<&str>) -> FixedBytes<32> {
    s.and_then(|t| t.parse::<B256>().ok()).unwrap_or(B256::ZERO)
}
