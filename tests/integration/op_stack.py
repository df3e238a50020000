"""An OP Stack chain stand-in for tests: anvil with a GasPriceOracle at the predeploy address and a
JSON-RPC proxy in front that does what an OP Stack node does beyond anvil: each receipt of the
bank's transactions carries `l1Fee` and the operator fee's fields (Isthmus), and the bank is
charged them (anvil_setBalance) when the receipt is first served.

The oracle is a contract written here (EVM assembly, no compiler): for any call it returns
sload(selector) + calldataload(4) * sload(selector + 1), so its answers are set with
anvil_setStorageAt: getL1FeeUpperBound(size) = the bound, getOperatorFee(gas) = constant + gas x
per-gas fee."""
import threading

from chains import Chain, rpc
from proxy import FaultProxy

ORACLE = "0x420000000000000000000000000000000000000F"
# PUSH1 0 CALLDATALOAD PUSH1 0xe0 SHR            selector
# DUP1 SLOAD SWAP1 PUSH1 1 ADD SLOAD              base, per
# PUSH1 4 CALLDATALOAD MUL ADD                    base + arg * per
# PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
ORACLE_CODE = "0x" + "600035" "60e01c" "80" "54" "90" "6001" "01" "54" "6004" "35" "02" "01" "600052" "6020" "6000" "f3"
GET_L1_FEE_UPPER_BOUND = 0xF1C7A58B
GET_OPERATOR_FEE = 0x275AEDD2


class OpStackChain:
    def __init__(self, chain_id, bank, l1_fee_bound, l1_fee, operator_per_gas, operator_constant):
        self.chain = Chain(chain_id)
        self.bank = bank.lower()
        self.l1_fee = l1_fee
        self.operator_scalar = operator_per_gas * 1_000_000  # Isthmus: gasUsed x scalar / 1e6 + constant
        self.operator_constant = operator_constant
        self.charged = {}  # tx hash -> what the bank was charged beyond gas
        self.lock = threading.Lock()
        rpc(self.chain.url, "anvil_setCode", [ORACLE, ORACLE_CODE])
        self.set_slot(GET_L1_FEE_UPPER_BOUND, l1_fee_bound)
        self.set_slot(GET_OPERATOR_FEE, operator_constant)
        self.set_slot(GET_OPERATOR_FEE + 1, operator_per_gas)
        self.proxy = FaultProxy(self.chain.url, rewrite=self.add_fees_to_receipts)
        self.url = self.proxy.url

    def set_slot(self, slot, value):
        rpc(self.chain.url, "anvil_setStorageAt", [ORACLE, "0x%064x" % slot, "0x%064x" % value])

    def set_l1_fee_bound(self, wei):
        self.set_slot(GET_L1_FEE_UPPER_BOUND, wei)

    def add_fees_to_receipts(self, reqs, answers):
        by_id = {a.get("id"): a for a in answers}
        for r in reqs:
            receipt = by_id.get(r.get("id"), {}).get("result")
            if r.get("method") == "eth_getTransactionReceipt" and receipt and receipt["from"].lower() == self.bank:
                self.add_fees(receipt)

    def add_fees(self, receipt):
        gas_used = int(receipt["gasUsed"], 16)
        extra = self.l1_fee + gas_used * self.operator_scalar // 1_000_000 + self.operator_constant
        receipt["l1Fee"] = hex(self.l1_fee)
        receipt["operatorFeeScalar"] = hex(self.operator_scalar)
        receipt["operatorFeeConstant"] = hex(self.operator_constant)
        with self.lock:
            if receipt["transactionHash"] in self.charged:
                return
            self.charged[receipt["transactionHash"]] = extra
            self.chain.set_balance(self.bank, self.chain.balance(self.bank) - extra)

    def stop(self):
        self.proxy.stop()
        self.chain.stop()
