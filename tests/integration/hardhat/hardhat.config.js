export default {
  networks: {
    km: {
      type: "edr-simulated",
      chainId: 31400,
      hardfork: "prague",
      mining: { auto: true, interval: 0 },
      accounts: [{ privateKey: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", balance: "1000000000000000000000" }],
    },
  },
};
