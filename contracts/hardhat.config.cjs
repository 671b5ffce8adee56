// Only for `hardhat node`, the local dev chain of loader/tests/chain*.rs. Contracts are
// compiled with solcjs (scripts/compile.cjs), never by Hardhat, so nothing is downloaded.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      // Deterministic blocks and no gas surprises for the tests.
      mining: { auto: true, interval: 0 },
      allowUnlimitedContractSize: false,
    },
  },
};
