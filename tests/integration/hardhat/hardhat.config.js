// A hardhat network for keymaster's integration tests (tests/integration/nodes.py starts
// `hardhat node --network km` here). Settings come from the environment, so one file serves
// every test chain: KM_CHAIN_ID, KM_HARDFORK (e.g. "berlin"), KM_BLOCK_MS (0: automine; else a
// block every KM_BLOCK_MS milliseconds), KM_BANK_KEY (the funded dev account).
const blockMs = Number(process.env.KM_BLOCK_MS ?? 0);
export default {
  networks: {
    km: {
      type: "edr-simulated",
      chainId: Number(process.env.KM_CHAIN_ID ?? 31337),
      hardfork: process.env.KM_HARDFORK || "prague",
      mining: { auto: blockMs === 0, interval: blockMs },
      accounts: [{ privateKey: process.env.KM_BANK_KEY, balance: "1000000000000000000000" }],
    },
  },
};
