"""Three node implementations behind one small interface, for tests that must hold on each:
anvil (foundry), hardhat 3 (EDR, on npm's Node 22) and ganache 7.9.2, all pinned in package.json.
Each starts on a free loopback port with the dev key funded, automine or a block every N seconds,
optionally Berlin (no EIP-1559); mining can be paused and resumed."""
import os
import subprocess

from chains import DEV_KEY, free_port, rpc, wait_until_serving

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
NM = os.path.join(ROOT, "node_modules")
ANVIL = os.environ.get("ANVIL_BIN", os.path.join(NM, "@foundry-rs/anvil-linux-amd64/bin/anvil"))
NODE22 = os.path.join(NM, "node/bin/node")
HARDHAT = os.path.join(NM, "hardhat/dist/src/cli.js")
GANACHE = os.path.join(NM, "ganache/dist/node/cli.js")
BANK_WEI = 1000 * 10**18


class Node:
    kind = "?"

    def __init__(self, chain_id, block_time=None, hardfork=None):
        self.chain_id, self.block_time, self.hardfork = chain_id, block_time, hardfork
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.devnull, "w")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=self.env(),
                                     cwd=self.cwd())
        wait_until_serving(self.url, self.proc, f"{self.kind} on port {self.port}", timeout=60)

    def env(self):
        return dict(os.environ)

    def cwd(self):
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def rpc(self, method, params=None):
        return rpc(self.url, method, params or [])

    def balance(self, address):
        return int(self.rpc("eth_getBalance", [address, "latest"]), 16)

    def nonce(self, address):
        return int(self.rpc("eth_getTransactionCount", [address, "latest"]), 16)

    def transactions_from(self, sender, first_block=0):
        out = []
        latest = int(self.rpc("eth_blockNumber"), 16)
        for n in range(first_block, latest + 1):
            block = self.rpc("eth_getBlockByNumber", [hex(n), True])
            out += [tx for tx in block["transactions"] if tx["from"].lower() == sender.lower()]
        return out

    def block_number(self):
        return int(self.rpc("eth_blockNumber"), 16)


class Anvil(Node):
    kind = "anvil"

    def command(self):
        args = [ANVIL, "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id), "--silent"]
        if self.hardfork:
            args += ["--hardfork", self.hardfork]
        if self.block_time:
            args += ["--block-time", str(self.block_time)]
        return args

    def set_balance(self, address, wei):
        self.rpc("anvil_setBalance", [address, hex(wei)])

    def pause_mining(self):
        self.rpc("evm_setAutomine", [False])
        self.rpc("evm_setIntervalMining", [0])

    def resume_mining(self):
        if self.block_time:
            self.rpc("evm_setIntervalMining", [self.block_time])
        else:
            self.rpc("evm_setAutomine", [True])
            self.rpc("evm_mine")


class Hardhat(Node):
    kind = "hardhat"

    def command(self):
        return [NODE22, HARDHAT, "node", "--network", "km", "--hostname", "127.0.0.1", "--port", str(self.port)]

    def cwd(self):
        return os.path.join(os.path.dirname(__file__), "hardhat")

    def env(self):
        return dict(os.environ, KM_CHAIN_ID=str(self.chain_id), KM_HARDFORK=self.hardfork or "",
                    KM_BLOCK_MS=str(int((self.block_time or 0) * 1000)), KM_BANK_KEY=DEV_KEY)

    def set_balance(self, address, wei):
        self.rpc("hardhat_setBalance", [address, hex(wei)])

    def pause_mining(self):
        self.rpc("evm_setAutomine", [False])
        self.rpc("evm_setIntervalMining", [0])

    def resume_mining(self):
        if self.block_time:
            self.rpc("evm_setIntervalMining", [int(self.block_time * 1000)])
        else:
            self.rpc("evm_setAutomine", [True])
            self.rpc("evm_mine")


class Ganache(Node):
    kind = "ganache"

    def command(self):
        args = ["node", GANACHE, "--server.host", "127.0.0.1", "--server.port", str(self.port),
                "--chain.chainId", str(self.chain_id), "--wallet.accounts", f"{DEV_KEY},{hex(BANK_WEI)}",
                "--logging.quiet"]
        if self.hardfork:
            args += ["--chain.hardfork", self.hardfork]
        if self.block_time:
            args += ["--miner.blockTime", str(self.block_time)]
        return args

    def set_balance(self, address, wei):
        self.rpc("evm_setAccountBalance", [address, hex(wei)])

    def pause_mining(self):
        self.rpc("miner_stop")

    def resume_mining(self):
        self.rpc("miner_start")


NODES = {"anvil": Anvil, "hardhat": Hardhat, "ganache": Ganache}
